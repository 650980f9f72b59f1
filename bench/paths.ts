// Where the benchmark finds the project: its modules run from .bench/bench/, two levels below the root.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))

export const paths = {
  /** The built gateway and simulator (`npm run build`). */
  dist: join(root, 'dist'),
  /** The scenarios' wrk scripts and report.lua. */
  wrkScripts: join(root, 'bench', 'wrk'),
  /** latest.json and the CPU profiles (git ignores it). */
  results: join(root, 'bench', 'results'),
  /** The Go peer's source (bench/peers/go/), and where it is built (.bench/go/: binary, GOPATH, cache). */
  goPeerSource: join(root, 'bench', 'peers', 'go'),
  goPeerBuild: join(root, '.bench', 'go'),
  /** The floor server, built (bench/floor/server.ts): its server.js, started as a gateway is. */
  floor: join(root, '.bench', 'bench', 'floor')
}
