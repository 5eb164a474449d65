/** express + express-jwt (jsonwebtoken underneath): signature and exp, not the ACL. */
import express from 'express'
import { expressjwt } from 'express-jwt'
import { listenExpress, ROUTE_EXPRESS } from './common.js'

export async function start ({ publicKey }) {
  const app = express()
  app.use(expressjwt({ secret: publicKey, algorithms: ['RS256'] }))
  app.get(ROUTE_EXPRESS, (req, res) => { res.json({ id: req.params.id }) })
  // Answer errors with their status and no stack on stderr (Express' default handler prints it).
  app.use((error, req, res, _next) => { res.status(error.status ?? 500).end() })
  return listenExpress(app)
}
