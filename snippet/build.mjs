// Bundles src/index.js into one minified ES2017 IIFE.
// Usage: node build.mjs [OUTFILE]   (default: ../collector/static/s.js, the committed copy)
import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'

const here = (p) => fileURLToPath(new URL(p, import.meta.url))
const outfile = process.argv[2] || here('../collector/static/s.js')

await build({
  entryPoints: [here('src/index.js')],
  outfile,
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2017',
  legalComments: 'none',
  charset: 'utf8',
  logLevel: 'warning',
})
