#!/usr/bin/env node
/**
 * The `vonage-jwt-guard` executable. CommonJS, so that the thread pool is sized (threadpool.cts)
 * before Node 20's ES module loader starts the pool to read the command's modules (index.ts);
 * Node 22 and later start it on first use.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- CommonJS on purpose: see above
import threadpool = require('./threadpool.cjs')

threadpool.chooseThreadPoolSize()
void import('./index.js')
