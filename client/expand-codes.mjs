// A step of `npm run build:client`: in the shipped dist/client/types.d.ts, the server's error codes as
// the union of literals the compiler derives from lib/errors.ts and lib/schemas.ts, instead of the
// derivation itself, which would make every mini-program project load lib/errors.d.ts and through
// it @fastify/error's and Node's types.
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const source = fileURLToPath(new URL('types.ts', import.meta.url))
const shipped = fileURLToPath(new URL('../dist/client/types.d.ts', import.meta.url))

const program = ts.createProgram([source], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true, skipLibCheck: true, noEmit: true })
const alias = program.getSourceFile(source)?.statements.find((s) => ts.isTypeAliasDeclaration(s) && s.name.text === 'ServerErrorCode')
if (alias === undefined) throw new Error('client/types.ts has no ServerErrorCode')
const type = program.getTypeChecker().getTypeAtLocation(alias.name)
const codes = (type.isUnion() ? type.types : [type]).map((t) => t.isStringLiteral() ? t.value : null)
if (codes.length < 30 || codes.some((c) => c === null || !/^[A-Z][A-Z0-9_]+$/.test(c)) || !codes.includes('AUTH_TOKEN_EXPIRED')) {
  throw new Error(`ServerErrorCode is not a union of codes: ${program.getTypeChecker().typeToString(type)}`)
}

const union = codes.sort().map((c) => `'${c}'`).join(' | ')
const dts = readFileSync(shipped, 'utf8')
  .replace(/^import type \* as ServerErrors from .*\n/m, '')
  .replace(/^type CodeOf<T> = [\s\S]*?^\}[^\n]*;\n/m, '')
  .replace(/^export type ServerErrorCode = [\s\S]*?^\}[^\n]*;\n/m, `export type ServerErrorCode = ${union};\n`)
if (dts.includes('ServerErrors') || dts.includes('errors.js') || !dts.includes(`export type ServerErrorCode = ${union};`)) {
  throw new Error('dist/client/types.d.ts: the derivation of ServerErrorCode was not replaced')
}
writeFileSync(shipped, dts)
