// Package tools holds no code: its module pins the versions of the
// developer tools that CI runs (staticcheck, as a tool directive in
// go.mod), apart from the library's own dependencies. Run one from the
// root of the checkout with
//
//	go tool -modfile=tools/go.mod staticcheck ./...
//
// The module is in the workspace (go.work) so that go commands work in its
// directory too.
package tools
