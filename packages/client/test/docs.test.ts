/**
 * Every export of every entry point (the package's `exports`) has TSDoc with
 * an example, read from the sources by the TypeScript compiler: the rule is
 * checked, not just stated. And the build output is what a browser can load
 * without a bundler: ES modules whose relative imports end in `.js`, with no
 * bare specifier (no runtime dependency) and no Node built-in.
 */
import { readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import ts from 'typescript'

const dir = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
  exports: Record<string, string | { default: string }>, dependencies?: Record<string, string>
}
const entries = Object.entries(manifest.exports)
  .filter(([subpath]) => subpath !== './package.json')
  .map(([subpath, target]) => [subpath, path.join(dir, (target as { default: string }).default.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts'))] as const)

t.test('every export of every entry point has TSDoc with an @example', async (t) => {
  const program = ts.createProgram(entries.map(([, file]) => file), {
    module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, noEmit: true, skipLibCheck: true,
  })
  const checker = program.getTypeChecker()
  t.same(entries.map(([subpath]) => subpath).sort(), ['.', './error-codes', './protocol', './user-agent'])
  for (const [subpath, file] of entries) {
    const source = program.getSourceFile(file)
    t.ok(source, `${subpath}: ${file}`)
    const exported = checker.getExportsOfModule(checker.getSymbolAtLocation(source!)!)
    t.ok(exported.length > 0, `${subpath} exports something`)
    for (const symbol of exported) {
      const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol
      const documented = target.getDocumentationComment(checker).length > 0
      const example = target.getJsDocTags(checker).some((tag) => tag.name === 'example') ||
        (target.declarations ?? []).some((declaration) => ts.getJSDocTags(declaration).some((tag) => tag.tagName.text === 'example'))
      t.ok(documented && example, `${subpath} ${symbol.name}: TSDoc${documented ? '' : ' (missing)'} with @example${example ? '' : ' (missing)'}`)
    }
  }
})

t.test('no runtime dependencies', async (t) => {
  t.same(Object.keys(manifest.dependencies ?? {}), [])
})

t.test('the sources import only each other, by relative .js paths (what a browser loads from dist as is)', async (t) => {
  const src = path.join(dir, 'src')
  for (const file of readdirSync(src).filter((name) => name.endsWith('.ts'))) {
    const text = readFileSync(path.join(src, file), 'utf8')
    for (const [, specifier] of text.matchAll(/^(?:import|export)\s[^'"]*?from\s+'([^']+)'/gm)) {
      t.match(specifier, /^\.\/[\w-]+\.js$/, `${file}: ${specifier}`)
    }
    t.notMatch(text, /\b(process|Buffer|require)\s*[.(]/, `${file} uses no Node-only global`)
  }
})
