/**
 * `verify --openapi`: what a token (or an `--acl`, before anything is minted) grants of OpenAPI
 * documents, operation by operation, with the pattern that grants each. A token's rows are the
 * verifier's own decision (`authorize`, so `--default-acl` and `--require-acl` count); an
 * `--acl`'s are the library's `aclCoverage()`. The paths are the documents' as served: an
 * `--acl-path` prefix is not stripped.
 */
import { aclCoverage, canonicalPath, GuardError, openApiOperations, type AclCoverage, type Verifier, type VerifiedToken } from 'vonage-jwt-guard'
import type { LoadedDocument } from './openapi.js'
import { escapeTerminal as safe } from './terminal.js'

export interface DocumentCoverage {
  source: string
  mount: string
  operations: AclCoverage[]
}

/** The coverage of a verified token: each operation through `verifier.authorize`. */
export function tokenCoverage (documents: readonly LoadedDocument[], verifier: Verifier, verified: VerifiedToken): DocumentCoverage[] {
  return documents.map(({ source, mount, document }) => ({
    source,
    mount,
    operations: openApiOperations(document, { basePath: mount }).map((operation) => {
      try {
        const { grantedBy } = verifier.authorize(verified, operation.method, canonicalPath(operation.target))
        return { ...operation, granted: true, grantedBy }
      } catch (error) {
        if (!(error instanceof GuardError)) throw error
        return { ...operation, granted: false, grantedBy: null }
      }
    })
  }))
}

/** The coverage of an acl claim's value. */
export function aclDocumentCoverage (documents: readonly LoadedDocument[], acl: unknown, requireAcl: boolean): DocumentCoverage[] {
  return documents.map(({ source, mount, document }) => ({ source, mount, operations: aclCoverage(document, acl, { basePath: mount, requireAcl }) }))
}

/** `{ operations: [{ method, path, operationId, granted, grantedBy }] }`, every document's. */
export function coverageJson (coverage: readonly DocumentCoverage[]): { operations: Array<Omit<AclCoverage, 'target'>> } {
  return {
    operations: coverage.flatMap(d => d.operations.map(({ method, path, operationId, granted, grantedBy }) => ({ method, path, operationId, granted, grantedBy })))
  }
}

function count (operations: readonly AclCoverage[]): string {
  const granted = operations.filter(o => o.granted).length
  return `${granted} of ${operations.length} operation${operations.length === 1 ? '' : 's'} granted`
}

/** The terminal form: a table per document, then the total. */
export function formatCoverage (coverage: readonly DocumentCoverage[]): string {
  const all = coverage.flatMap(d => d.operations)
  const width = (pick: (o: AclCoverage) => string): number => Math.max(0, ...all.map(o => pick(o).length))
  const methodWidth = Math.max(6, width(o => o.method))
  const pathWidth = Math.max(4, width(o => o.path))
  const idWidth = Math.max(9, width(o => o.operationId ?? '-'))
  const lines: string[] = []
  for (const document of coverage) {
    lines.push(`${safe(document.source)} at ${document.mount === '' ? '/' : safe(document.mount)}: ${count(document.operations)}`)
    lines.push(`  ${'METHOD'.padEnd(methodWidth)}  ${'PATH'.padEnd(pathWidth)}  ${'OPERATION'.padEnd(idWidth)}  GRANTED BY`)
    for (const o of document.operations) {
      const by = o.granted ? (o.grantedBy === null ? '(no acl claim: a root token)' : safe(o.grantedBy)) : '-  not granted'
      lines.push(`  ${o.method.padEnd(methodWidth)}  ${safe(o.path).padEnd(pathWidth)}  ${safe(o.operationId ?? '-').padEnd(idWidth)}  ${by}`)
    }
    lines.push('')
  }
  if (coverage.length > 1) lines.push(`in all: ${count(all)}`)
  return `${lines.join('\n').replace(/\n+$/, '')}\n`
}
