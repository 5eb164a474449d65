/**
 * The command line's `mock --openapi` app (cli/dist) over bench/mock-users.yaml: the path
 * parameter checked by the route schema, then the documented example.
 */
import { fileURLToPath } from 'node:url'
import { listenFastify } from './common.js'

export async function start ({ publicKey }) {
  const cli = (name) => import(new URL(`../../cli/dist/${name}`, import.meta.url).href)
  const [{ buildMock }, { loadDocuments }] = await Promise.all([cli('mock.js'), cli('openapi.js')])
  const documents = await loadDocuments([{ source: fileURLToPath(new URL('../mock-users.yaml', import.meta.url)) }])
  const app = await buildMock({ publicKey }, { logger: false }, false, documents)
  return listenFastify(app)
}
