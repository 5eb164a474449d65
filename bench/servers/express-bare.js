/** Express with no auth: the ceiling of the Express rows. */
import express from 'express'
import { listenExpress, ROUTE_EXPRESS } from './common.js'

export async function start () {
  const app = express()
  app.get(ROUTE_EXPRESS, (req, res) => { res.json({ id: req.params.id }) })
  // Answer errors with their status and no stack on stderr (Express' default handler prints it).
  app.use((error, req, res, _next) => { res.status(error.status ?? 500).end() })
  return listenExpress(app)
}
