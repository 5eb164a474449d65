/** express + express-jwt (jsonwebtoken underneath): signature and exp, not the ACL. */
import express from 'express'
import { expressjwt } from 'express-jwt'
import { listenExpress, ROUTE_EXPRESS } from './common.js'

export async function start ({ publicKey }) {
  const app = express()
  app.use(expressjwt({ secret: publicKey, algorithms: ['RS256'] }))
  app.get(ROUTE_EXPRESS, (req, res) => { res.json({ id: req.params.id }) })
  return listenExpress(app)
}
