package doccheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// tourInputs are the values the README's library tour takes as given, with
// their types: the parameters of the function the tour is compiled in. A
// tour that uses a new one fails with "undefined": add it here.
var tourInputs = []string{
	"ctx context.Context",
	"config, itlBytes []byte",
	"tftpCert, phoneCert *x509.Certificate",
	"tftpKey crypto.Signer",
	"phoneKey crypto.Decrypter",
	"users digest.CredentialStore",
	"clusterSecret []byte",
	"requestURI string",
	"authHeaders []string",
	"peer netip.Addr",
	"offeredLines []string",
	"answerLine string",
	"dtlsConn *dtls.Conn",
	"isClient bool",
	"newITL *ctl.File",
}

// tourImports are the packages the tour may name, by the name it uses.
var tourImports = map[string]string{
	"acl": "github.com/ucsec/ucsec/acl", "cnfenc": "github.com/ucsec/ucsec/cnfenc",
	"ctl": "github.com/ucsec/ucsec/ctl", "digest": "github.com/ucsec/ucsec/digest",
	"itl": "github.com/ucsec/ucsec/itl", "secstatus": "github.com/ucsec/ucsec/secstatus",
	"sgn": "github.com/ucsec/ucsec/sgn", "srtpkeys": "github.com/ucsec/ucsec/srtpkeys",
	"tvs": "github.com/ucsec/ucsec/tvs", "dtls": "github.com/pion/dtls/v3",
	"postgres": "github.com/ucsec/ucsec/stores/postgres", "redis": "github.com/ucsec/ucsec/stores/redis",
	"context": "context", "crypto": "crypto", "rand": "crypto/rand", "x509": "crypto/x509",
	"errors": "errors", "netip": "net/netip", "trustplan": "github.com/ucsec/ucsec/trustplan",
}

// TestReadmeTourCompiles compiles every ```go block of the README, the
// library tour, against the packages as they are: a change of API that
// the tour does not follow fails here. Each block becomes the body of a
// function whose parameters are tourInputs; every variable it declares is
// then used, since the tour shows calls, not what is done with results.
// The function is added to this package for one `go build` through an
// overlay, so nothing is written to the tree.
func TestReadmeTourCompiles(t *testing.T) {
	root := moduleRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?ms)^```go\n(.*?)^```").FindAllSubmatch(readme, -1)
	if len(blocks) == 0 {
		t.Fatal("README.md has no ```go block")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build with")
	}
	var src bytes.Buffer
	used := map[string]bool{"context": true, "crypto": true, "x509": true, "digest": true, "netip": true, "dtls": true, "ctl": true}
	for i, b := range blocks {
		for name := range tourImports {
			if bytes.Contains(b[1], []byte(name+".")) {
				used[name] = true
			}
		}
		fmt.Fprintf(&src, "func readmeTour%d(%s) {\n%s\n}\n\n", i+1, strings.Join(tourInputs, ", "), b[1])
	}
	var imports []string
	for name := range used {
		imports = append(imports, fmt.Sprintf("%s %q", name, tourImports[name]))
	}
	slices.Sort(imports)
	file := "package doccheck\n\nimport (\n" + strings.Join(imports, "\n") + "\n)\n\n" +
		"var _ = []any{" + strings.Join(tourParamNames(), ", ") + "}\n\n" + src.String()
	code, err := useDeclared(file)
	if err != nil {
		t.Fatalf("the README's go blocks do not parse: %v\n%s", err, file)
	}

	dir := t.TempDir()
	gen := filepath.Join(dir, "tour.go")
	if err := os.WriteFile(gen, code, 0o644); err != nil {
		t.Fatal(err)
	}
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{
		filepath.Join(root, "internal", "doccheck", "zz_readme_tour.go"): gen,
	}})
	ov := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ov, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gobin, "build", "-overlay", ov, "-o", os.DevNull, "./internal/doccheck")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the README's library tour does not compile: %v\n%s\nas compiled:\n%s", err, out, numbered(code))
	}
}

// tourParamNames returns the parameter names of tourInputs, as
// expressions that refer to their types (the function is never called; the
// var only keeps "imported and not used" away from the types).
func tourParamNames() []string {
	var types []string
	for _, in := range tourInputs {
		typ := in[strings.LastIndex(in, " ")+1:]
		types = append(types, "(*"+typ+")(nil)")
	}
	return types
}

// useDeclared parses file and, after every statement that declares
// variables with :=, adds `_ = v` for each, in the same block.
func useDeclared(file string) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "tour.go", file, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	ast.Inspect(f, func(n ast.Node) bool {
		block, ok := n.(*ast.BlockStmt)
		if !ok {
			return true
		}
		var list []ast.Stmt
		for _, s := range block.List {
			list = append(list, s)
			as, ok := s.(*ast.AssignStmt)
			if !ok || as.Tok != token.DEFINE {
				continue
			}
			for _, lhs := range as.Lhs {
				if id, ok := lhs.(*ast.Ident); ok && id.Name != "_" {
					list = append(list, &ast.AssignStmt{Lhs: []ast.Expr{ast.NewIdent("_")}, Tok: token.ASSIGN, Rhs: []ast.Expr{ast.NewIdent(id.Name)}})
				}
			}
		}
		block.List = list
		return true
	})
	var out bytes.Buffer
	if err := format.Node(&out, fset, f); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// numbered returns src with line numbers, to read compiler errors by.
func numbered(src []byte) string {
	var b strings.Builder
	for i, line := range strings.Split(string(src), "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, line)
	}
	return b.String()
}
