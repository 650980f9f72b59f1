import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', '.bench/**', 'node_modules/**', '.tap/**', 'coverage/**']
  }),
  {
    // TypeBox idiom: a schema constant and its Static<> type share one name.
    files: ['lib/schemas.ts'],
    rules: { '@typescript-eslint/no-redeclare': 'off' }
  }
]
