/** vonage-jwt-guard/express (ACL enforced), with its default cache; `options.dist`: another build (the baseline). Skipped while dist/express.js does not exist. */
import express from 'express'
import { load } from '../dist.js'
import { listenExpress, ROUTE_EXPRESS } from './common.js'

export async function start ({ publicKey, options }) {
  const { expressVonageJwt } = await load('express.js', options.dist)
  const app = express()
  app.use(expressVonageJwt({ publicKey, ...(options.cache === false ? { cache: false } : {}) }))
  app.get(ROUTE_EXPRESS, (req, res) => { res.json({ id: req.params.id }) })
  // Answer errors with their status and no stack on stderr (Express' default handler prints it).
  app.use((error, req, res, _next) => { res.status(error.status ?? 500).end() })
  return listenExpress(app)
}
