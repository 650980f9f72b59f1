import neostandard from 'neostandard'

// The shape the code keeps (issue "one home per concern"): files and functions small enough to read
// in one go, plugins as wiring, and lib/ free of Fastify so its flows run (and are tested) without it.
const SOURCE = ['*.ts', 'lib/**/*.ts', 'http/**/*.ts', 'plugins/**/*.ts', 'routes/**/*.ts', 'simulator/**/*.ts', 'bench/**/*.ts', 'client/**/*.ts']

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', '.bench/**', 'node_modules/**', '.tap/**', 'coverage/**']
  }),
  {
    // TypeBox idiom: a schema constant and its Static<> type share one name.
    files: ['lib/schemas.ts', 'lib/config-schema.ts', 'lib/access-schemas.ts'],
    rules: { '@typescript-eslint/no-redeclare': 'off' }
  },
  {
    files: SOURCE,
    rules: {
      'max-lines': ['error', { max: 250 }],
      'max-lines-per-function': ['error', { max: 80 }]
    }
  },
  {
    files: ['plugins/**/*.ts'],
    rules: { 'max-lines': ['error', { max: 70 }] }
  },
  {
    // @fastify/error is a standalone error factory (it does not load Fastify); the rest is Fastify's.
    files: ['lib/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        patterns: [{ regex: '^(fastify|fastify-plugin|@fastify/(?!error$).*)$', message: 'lib/ imports nothing from Fastify: put Fastify glue in http/ or plugins/' }]
      }]
    }
  }
]
