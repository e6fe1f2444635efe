import { readFile } from 'node:fs/promises'
import t from 'tap'
import { NODE_FLAGS, threadPoolSize, withNodeFlags } from '../src/runtime.js'

t.test('npm start and npm run start:cluster give node the flags src/runtime.ts lists', async (t) => {
  const { scripts } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }
  t.equal(scripts.start, `node ${NODE_FLAGS.join(' ')} dist/server.js`)
  t.equal(scripts['start:cluster'], `node ${NODE_FLAGS.join(' ')} dist/cluster.js`)
})

t.test('cluster workers get the flags, unless the operator set them already', async (t) => {
  t.same(withNodeFlags(['--enable-source-maps'], ''), ['--enable-source-maps', ...NODE_FLAGS])
  t.same(withNodeFlags([...NODE_FLAGS], ''), [...NODE_FLAGS], 'no duplicates when inherited from npm start')
  const others = NODE_FLAGS.filter((flag) => !flag.startsWith('--max-old-space-size='))
  t.same(withNodeFlags(['--max-old-space-size=2048'], ''), ['--max-old-space-size=2048', ...others], 'the command line wins')
  t.same(withNodeFlags([], '--max-old-space-size=1024 --trace-warnings'), others, 'NODE_OPTIONS wins')
})

t.test('cluster workers share two pool threads a core, 2 to 4 each', async (t) => {
  t.equal(threadPoolSize(2, 2), 2)
  t.equal(threadPoolSize(1, 2), 4, 'one worker keeps libuv\'s default')
  t.equal(threadPoolSize(8, 8), 2)
  t.equal(threadPoolSize(2, 8), 4)
  t.equal(threadPoolSize(16, 2), 2)
})
