// Bundles src/index.js with esbuild, then minifies with terser: one ES2017 IIFE.
// Usage: node build.mjs [OUTFILE]   (default: ../collector/static/s.js, the committed copy)
import { build } from 'esbuild'
import { minify } from 'terser'
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const here = (p) => fileURLToPath(new URL(p, import.meta.url))
const outfile = process.argv[2] || here('../collector/static/s.js')

const bundled = await build({
  entryPoints: [here('src/index.js')],
  write: false,
  bundle: true,
  format: 'iife',
  target: 'es2017',
  legalComments: 'none',
  charset: 'utf8',
  logLevel: 'warning',
})

// esbuild's minifier is fast; terser's is smaller (it inlines and joins more), which the budget needs.
const { code } = await minify(bundled.outputFiles[0].text, {
  ecma: 2017,
  compress: { ecma: 2017, passes: 3 },
  mangle: true,
  format: { ecma: 2017 },
})
writeFileSync(outfile, code)
