/**
 * Express with one middleware that only calls next(): what mounting any middleware costs. The
 * guard is one more layer of Express' router, so this is the ceiling no Express middleware passes.
 */
import express from 'express'
import { listenExpress, ROUTE_EXPRESS } from './common.js'

export async function start () {
  const app = express()
  app.use((req, res, next) => { next() })
  app.get(ROUTE_EXPRESS, (req, res) => { res.json({ id: req.params.id }) })
  // Answer errors with their status and no stack on stderr (Express' default handler prints it).
  app.use((error, req, res, _next) => { res.status(error.status ?? 500).end() })
  return listenExpress(app)
}
