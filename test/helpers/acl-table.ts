/**
 * The ACL decision table (SPEC 3): acl paths, method, canonical path, and the pattern that
 * grants or 403. acl.test.ts decides it; glob.test.ts matches its patterns and paths with our
 * matcher and with minimatch.
 */

export const DENIED = 403

/** The ACL the Vonage Client SDK documentation gives its users. */
export const CLIENT_SDK_ACL = JSON.parse('{"paths":{"/*/users/**":{},"/*/conversations/**":{},"/*/sessions/**":{},"/*/devices/**":{},"/*/image/**":{},"/*/media/**":{},"/*/applications/**":{},"/*/push/**":{},"/*/knocking/**":{},"/*/legs/**":{}}}') as { paths: Record<string, object> }

/** [acl paths, method, canonical path, granting pattern or 403] */
export const decisions: Array<[string, Record<string, unknown>, string, string | null, string | typeof DENIED]> = [
  // the SPEC examples
  ['spec', { '/*/users/**': {} }, 'GET', '/v1/users', '/*/users/**'],
  ['spec', { '/*/users/**': {} }, 'GET', '/v1/users/abc/def', '/*/users/**'],
  ['spec', { '/*/users/**': {} }, 'GET', '/v1/users/abc', '/*/users/**'],
  ['spec', { '/*/users/**': {} }, 'GET', '/v1/userss', DENIED],
  ['spec', { '/*/users/**': {} }, 'GET', '/users/x', DENIED],
  ['spec', { '/*/users/**': {} }, 'GET', '/v1/v2/users', DENIED],

  // the Client SDK ACL
  ['sdk', CLIENT_SDK_ACL.paths, 'GET', '/v1/users', '/*/users/**'],
  ['sdk', CLIENT_SDK_ACL.paths, 'PATCH', '/v0.1/users/USR-1', '/*/users/**'],
  ['sdk', CLIENT_SDK_ACL.paths, 'POST', '/v0.3/conversations/CON-1/events', '/*/conversations/**'],
  ['sdk', CLIENT_SDK_ACL.paths, 'GET', '/v1/sessions', '/*/sessions/**'],
  ['sdk', CLIENT_SDK_ACL.paths, 'PUT', '/v1/devices/d/push', '/*/devices/**'],
  ['sdk', CLIENT_SDK_ACL.paths, 'GET', '/v1/image/x.png', '/*/image/**'],
  ['sdk', CLIENT_SDK_ACL.paths, 'GET', '/v1/media', '/*/media/**'],
  ['sdk', CLIENT_SDK_ACL.paths, 'GET', '/v2/applications/app-1', '/*/applications/**'],
  ['sdk', CLIENT_SDK_ACL.paths, 'POST', '/v1/push/ios', '/*/push/**'],
  ['sdk', CLIENT_SDK_ACL.paths, 'POST', '/v1/knocking', '/*/knocking/**'],
  ['sdk', CLIENT_SDK_ACL.paths, 'DELETE', '/beta/legs/LEG-1', '/*/legs/**'],
  ['sdk', CLIENT_SDK_ACL.paths, 'GET', '/.v1/users', '/*/users/**'], // dot: true
  ['sdk', CLIENT_SDK_ACL.paths, 'GET', '/v1/accounts', DENIED],
  ['sdk', CLIENT_SDK_ACL.paths, 'GET', '/v1/Users', DENIED], // literals are case-sensitive
  ['sdk', CLIENT_SDK_ACL.paths, 'GET', '/V1/USERS', DENIED],
  ['sdk', CLIENT_SDK_ACL.paths, 'GET', '/users', DENIED],
  ['sdk', CLIENT_SDK_ACL.paths, 'GET', '/', DENIED],
  ['sdk', CLIENT_SDK_ACL.paths, 'GET', '/v1/user', DENIED],
  ['sdk', CLIENT_SDK_ACL.paths, 'GET', '/v1/conversationsX/a', DENIED],

  // `*` is exactly one non-empty segment
  ['star', { '/*': {} }, 'GET', '/a', '/*'],
  ['star', { '/*': {} }, 'GET', '/', DENIED],
  ['star', { '/*': {} }, 'GET', '/a/b', DENIED],
  ['star', { '/a/*': {} }, 'GET', '/a', DENIED],
  ['star', { '/a/*': {} }, 'GET', '/a/.env', '/a/*'],
  ['star', { '/v1/files/*.json': {} }, 'GET', '/v1/files/a.json', '/v1/files/*.json'],
  ['star', { '/v1/files/*.json': {} }, 'GET', '/v1/files/a/b.json', DENIED],
  ['question', { '/v1/calls/?': {} }, 'GET', '/v1/calls/a', '/v1/calls/?'],
  ['question', { '/v1/calls/?': {} }, 'GET', '/v1/calls/ab', DENIED],
  ['class', { '/v1/[ab]': {} }, 'GET', '/v1/b', '/v1/[ab]'],
  ['class', { '/v1/[ab]': {} }, 'GET', '/v1/c', DENIED],

  // `**` is any number of segments
  ['globstar', { '/**': {} }, 'GET', '/', '/**'],
  ['globstar', { '/**': {} }, 'GET', '/a/b/c', '/**'],
  ['globstar', { '/a/**/b': {} }, 'GET', '/a/b', '/a/**/b'],
  ['globstar', { '/a/**/b': {} }, 'GET', '/a/x/y/b', '/a/**/b'],
  ['globstar', { '/a/**/b': {} }, 'GET', '/a/x/c', DENIED],
  ['globstar', { '/a/**/**': {} }, 'GET', '/a', '/a/**/**'],
  ['globstar', { '/a/**': {} }, 'GET', '/ab', DENIED],
  ['globstar', { '/a/**': {} }, 'GET', '/', DENIED],

  // one trailing slash of a pattern is ignored, as on a request path (@vonage/jwt's tests write `/messages/*/`)
  ['trailing slash', { '/messages/*/': { methods: ['GET'] } }, 'GET', '/messages/MSG-1', '/messages/*/'],
  ['trailing slash', { '/messages/*/': { methods: ['GET'] } }, 'HEAD', '/messages/MSG-1', '/messages/*/'],
  ['trailing slash', { '/messages/*/': { methods: ['GET'] } }, 'POST', '/messages/MSG-1', DENIED],
  ['trailing slash', { '/messages/*/': {} }, 'GET', '/messages', DENIED],
  ['trailing slash', { '/messages/*/': {} }, 'GET', '/messages/MSG-1/x', DENIED],
  ['trailing slash', { '/v1/users/': {} }, 'GET', '/v1/users', '/v1/users/'],
  ['trailing slash', { '/v1/users/': {} }, 'GET', '/v1/users/x', DENIED],
  ['trailing slash', { '/*/users/**/': {} }, 'GET', '/v1/users', '/*/users/**/'],
  ['trailing slash', { '/*/users/**/': {} }, 'GET', '/v1/users/a/b', '/*/users/**/'],
  ['trailing slash', { '/*/users/**/': {} }, 'GET', '/v1/userss', DENIED],
  ['trailing slash', { '/**/': {} }, 'GET', '/', '/**/'],
  ['trailing slash', { '/**/': {} }, 'GET', '/a/b', '/**/'],
  ['trailing slash', { '/': {} }, 'GET', '/', '/'],
  ['trailing slash', { '/': {} }, 'GET', '/a', DENIED],
  ['trailing slash', { '//': {} }, 'GET', '/', '//'], // as minimatch matched it before
  ['trailing slash', { '/a//': {} }, 'GET', '/a', DENIED], // one slash is dropped, not two
  ['trailing slash', { '/a//': {} }, 'GET', '/a/b', DENIED],

  // the three Video paths of Vonage's documents are three different grants (README, vonage-video)
  ['video paths', { '/session/**': {} }, 'GET', '/session/S1', '/session/**'],
  ['video paths', { '/session/**': {} }, 'GET', '/v2/session/S1', DENIED],
  ['video paths', { '/session/**': {} }, 'GET', '/v1/sessions/S1', DENIED],
  ['video paths', { '/*/session/**': {} }, 'GET', '/session/S1', DENIED],
  ['video paths', { '/*/session/**': {} }, 'GET', '/v2/session/S1', '/*/session/**'],
  ['video paths', { '/*/session/**': {} }, 'GET', '/v1/sessions/S1', DENIED],
  ['video paths', { '/*/sessions/**': {} }, 'GET', '/session/S1', DENIED],
  ['video paths', { '/*/sessions/**': {} }, 'GET', '/v2/session/S1', DENIED],
  ['video paths', { '/*/sessions/**': {} }, 'GET', '/v1/sessions/S1', '/*/sessions/**'],

  // no braces, extglobs or negation: they are literal text
  ['nobrace', { '/v1/{a,b}': {} }, 'GET', '/v1/a', DENIED],
  ['nobrace', { '/v1/{a,b}': {} }, 'GET', '/v1/{a,b}', '/v1/{a,b}'],
  ['noext', { '/v1/+(a)': {} }, 'GET', '/v1/a', DENIED],
  ['decoded', { '/v1/a b': {} }, 'GET', '/v1/a b', '/v1/a b'],

  // methods: HEAD counts as GET, compared upper-case
  ['methods', { '/a': { methods: ['GET'] } }, 'GET', '/a', '/a'],
  ['methods', { '/a': { methods: ['GET'] } }, 'HEAD', '/a', '/a'],
  ['methods', { '/a': { methods: ['GET'] } }, 'get', '/a', '/a'],
  ['methods', { '/a': { methods: ['GET'] } }, 'POST', '/a', DENIED],
  ['methods', { '/a': { methods: ['get'] } }, 'GET', '/a', '/a'],
  ['methods', { '/a': { methods: ['HEAD'] } }, 'HEAD', '/a', '/a'],
  ['methods', { '/a': { methods: ['HEAD'] } }, 'GET', '/a', DENIED],
  ['methods', { '/a': { methods: ['POST', 'PUT'] } }, 'PUT', '/a', '/a'],
  ['methods', { '/a': { methods: [] } }, 'GET', '/a', DENIED],
  ['methods', { '/a': { methods: ['GET'] } }, 'GET', '/b', DENIED],

  // rules combine as a union; the first granting pattern is named
  ['union', { '/a': { methods: ['GET'] }, '/**': { methods: ['POST'] } }, 'POST', '/a', '/**'],
  ['union', { '/a': { methods: ['GET'] }, '/**': { methods: ['POST'] } }, 'GET', '/a', '/a'],
  ['union', { '/a': { methods: ['GET'] }, '/**': { methods: ['POST'] } }, 'DELETE', '/a', DENIED],
  ['union', { '/**': {}, '/a': {} }, 'GET', '/a', '/**'],
  ['union', { '/a': { filters: { x: 1 } }, '/**': {} }, 'GET', '/a', '/**'],

  // filters without an aclFilter do not grant
  ['filters', { '/a': { filters: { x: 1 } } }, 'GET', '/a', DENIED],
  ['filters', { '/a': { filters: {} } }, 'GET', '/a', '/a'],

  // an empty acl grants nothing; a null path is granted by no rule
  ['empty', {}, 'GET', '/', DENIED],
  ['null path', { '/**': {} }, 'GET', null, DENIED]
]

