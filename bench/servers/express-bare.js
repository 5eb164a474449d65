/** Express with no auth: the ceiling of the Express rows. */
import express from 'express'
import { listenExpress, ROUTE_EXPRESS } from './common.js'

export async function start () {
  const app = express()
  app.get(ROUTE_EXPRESS, (req, res) => { res.json({ id: req.params.id }) })
  return listenExpress(app)
}
