// Package doccheck holds no code: its tests check the repository's own
// documentation, the comments and the Markdown files of every package.
//
// The documentation must stand alone. It cites public sources (an RFC, a
// Cisco document by its title, a public implementation) or states the rule
// itself; it never cites notes kept outside the repository, which a reader
// of a clone or of pkg.go.dev cannot open. Run the check with
//
//	go test ./internal/doccheck
package doccheck
