// Package signedfile holds what the packages of the signed-file format
// (sgn, which owns the header, and ctl and cnfenc, which build on it)
// share below their public API: the Cisco distinguished-name strings that
// headers and trust-list records carry, and the hash algorithm codes.
package signedfile
