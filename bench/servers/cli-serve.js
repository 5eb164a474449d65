/** The command line's `serve` app (cli/dist): every granted request answered with a JSON echo of the decision. */
import { listenFastify } from './common.js'

export async function start ({ publicKey }) {
  const { buildServe } = await import(new URL('../../cli/dist/serve.js', import.meta.url).href)
  const app = await buildServe({ publicKey }, { logger: false }, false)
  return listenFastify(app)
}
