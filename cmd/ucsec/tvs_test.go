package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/internal/testnet"
	"github.com/ucsec/ucsec/internal/testpki"
)

// tvsIdentity writes a throw-away TVS certificate and key (EC P-256,
// serverAuth) for cn to dir/<name>.pem, both in one file, and the
// certificate alone to dir/<name>.crt, and returns the two paths.
func tvsIdentity(t *testing.T, dir, name, cn string) (pemPath, crtPath string) {
	t.Helper()
	pemPath, crtPath, _ = writeSelfSigned(t, dir, name, testpki.Server(cn))
	return pemPath, crtPath
}

// tvsListeningPrefix starts the line "tvs serve" prints once it listens.
const tvsListeningPrefix = "tvs: listening on "

// startTVS runs "tvs serve --cert cert --key cert" with args in-process
// and returns its address, its standard error, and a function that stops
// it (as SIGINT would) and checks that it exited with status 0.
func startTVS(t *testing.T, cert string, args ...string) (addr string, stderr *testnet.Log, stop func()) {
	t.Helper()
	// cert is serveContext's key for tvs serve.
	return startServe(t, cert, tvsListeningPrefix, append([]string{"tvs", "serve", "--cert", cert, "--key", cert, "--listen", "127.0.0.1:0"}, args...)...)
}

// tvsQueryJSON runs "tvs query --json" and decodes what it prints.
func tvsQueryJSON(t *testing.T, want int, args ...string) *tvsQueryReport {
	t.Helper()
	r := mustRun(t, want, append([]string{"tvs", "query", "--json"}, args...)...)
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	rep := new(tvsQueryReport)
	require.NoError(t, dec.Decode(rep), r.stdout)
	return rep
}

// A TVS vouching for the certificates of an ITL and of a file, asked by
// "tvs query" trusting it through --ca or through the ITL's TVS record.
func TestTVSEndToEnd(t *testing.T) {
	dir := t.TempDir()
	tvsPEM, tvsCrt := tvsIdentity(t, dir, "tvs", "TVS-test")
	_, otherCrt := tvsIdentity(t, dir, "other", "TVS-other")
	itlFile := filepath.Join(dir, "ITLFile.tlv")
	mustRun(t, exitOK, append(buildArgs("--itl", "--record", "ccm+tftp="+tftpPEM, "--record", "tvs="+tvsCrt), "-o", itlFile)...)
	// The CAPF certificate: any certificate will do.
	capfCrt := otherCrt

	addr, serverLog, stop := startTVS(t, tvsPEM, "--itl", itlFile, "--trust", "capf,tvs="+capfCrt, "--ttl", "1h")

	// Text output, trusting the TVS certificate itself.
	r := mustRun(t, exitOK, "tvs", "query", "--server", addr, "--ca", tvsCrt, sastPEM)
	for _, want := range []string{"Certificate:", "CN=SAST", "SHA-256:", "Server:", addr, "Status:", "valid", "Roles:", "SAST", "TTL:", "3600 seconds (1h0m0s)"} {
		assert.Contains(t, r.stdout, want)
	}
	assert.Empty(t, r.stderr)

	// As a phone: the TVS certificate is trusted through the ITL.
	rep := tvsQueryJSON(t, exitOK, "--server", addr, "--itl", itlFile, "--device", "CP-8845-SEP001122334455", tftpPEM)
	assert.Equal(t, &tvsQueryReport{
		Certificate: rep.Certificate, SHA256: rep.SHA256, Server: addr, Valid: true, Roles: []string{"CCM+TFTP"}, TTL: 3600,
	}, rep)
	assert.Contains(t, rep.Certificate, "CN=Asterisk")
	assert.Len(t, rep.SHA256, 32)

	rep = tvsQueryJSON(t, exitOK, "--server", addr, "--ca", tvsCrt, capfCrt)
	assert.Equal(t, []string{"CAPF", "TVS"}, rep.Roles)
	rep = tvsQueryJSON(t, exitOK, "--server", addr, "--ca", tvsCrt, tvsCrt)
	assert.Equal(t, []string{"TVS"}, rep.Roles, "the ITL's TVS record")

	// Not trusted: exit status 1, the status printed.
	r = ucsec(t, "", "tvs", "query", "--server", addr, "--ca", tvsCrt, devicePEM)
	assert.Equal(t, exitInvalid, r.code)
	assert.Contains(t, r.stdout, "not trusted")
	assert.NotContains(t, r.stdout, "Roles")
	rep = tvsQueryJSON(t, exitInvalid, "--server", addr, "--ca", tvsCrt, devicePEM)
	assert.False(t, rep.Valid)
	assert.Equal(t, []string{}, rep.Roles)
	assert.Zero(t, rep.TTL)

	// The certificate from standard input.
	r = ucsec(t, string(mustRead(t, sastPEM)), "tvs", "query", "--server", addr, "--ca", tvsCrt, "-")
	r.check(t, exitOK, "CN=SAST", "")

	// A first server down, the second answers.
	down := tvsClosedPort(t)
	rep = tvsQueryJSON(t, exitOK, "--server", down, "--server", addr, "--ca", tvsCrt, sastPEM)
	assert.Equal(t, addr, rep.Server)

	// No server answers, or none is trusted: exit status 2.
	ucsec(t, "", "tvs", "query", "--server", down, "--ca", tvsCrt, sastPEM).check(t, exitError, "", down)
	ucsec(t, "", "tvs", "query", "--server", addr, "--ca", otherCrt, sastPEM).check(t, exitError, "", "not one of the trusted certificates")

	logs := serverLog.String()
	for _, want := range []string{"tvs: loaded", "file=" + itlFile, "certificates=3", "roles=CAPF,TVS", "tvs: serving", "tvs: request answered", "device=CP-8845-SEP001122334455"} {
		assert.Contains(t, logs, want)
	}
	stop()
	assert.Contains(t, serverLog.String(), "tvs: stopped")
}

// tvsClosedPort returns a loopback address nothing listens on.
func tvsClosedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	return addr
}

// With --store the entries outlive the server; the store is locked while
// a server holds it.
func TestTVSStore(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	tvsPEM, tvsCrt := tvsIdentity(t, dir, "tvs", "TVS-test")

	addr, _, stop := startTVS(t, tvsPEM, "--store", store, "--trust", "sast="+sastPEM)
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(store)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	}
	assert.FileExists(t, filepath.Join(store, tvsStoreFileName))
	rep := tvsQueryJSON(t, exitOK, "--server", addr, "--ca", tvsCrt, sastPEM)
	assert.Equal(t, []string{"SAST"}, rep.Roles)

	// A second server on the same store.
	second := copyFile(t, tvsPEM, t.TempDir())
	r := ucsec(t, "", "tvs", "serve", "--cert", second, "--key", second, "--listen", "127.0.0.1:0", "--store", store)
	r.check(t, exitError, "", "is in use")
	stop()

	// Restarted without --trust: the entry is still there; a new one is
	// added, and --trust again replaces the roles.
	addr, _, stop = startTVS(t, tvsPEM, "--store", store, "--trust", "tftp="+tftpPEM, "--trust", "ccm,sast="+sastPEM)
	rep = tvsQueryJSON(t, exitOK, "--server", addr, "--ca", tvsCrt, sastPEM)
	assert.Equal(t, []string{"SAST", "CCM"}, rep.Roles)
	rep = tvsQueryJSON(t, exitOK, "--server", addr, "--ca", tvsCrt, tftpPEM)
	assert.Equal(t, []string{"TFTP"}, rep.Roles)
	stop()

	// A mistake in a later flag leaves the store as it was.
	bad := filepath.Join(dir, "bad.pem")
	require.NoError(t, os.WriteFile(bad, []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"), 0o600))
	r = ucsec(t, "", "tvs", "serve", "--cert", tvsPEM, "--key", tvsPEM, "--listen", "127.0.0.1:0", "--store", store,
		"--trust", "tvs="+sastPEM, "--trust", "tftp="+bad)
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "bad.pem: tvs: invalid argument")
	addr, _, stop = startTVS(t, tvsPEM, "--store", store)
	rep = tvsQueryJSON(t, exitOK, "--server", addr, "--ca", tvsCrt, sastPEM)
	assert.Equal(t, []string{"SAST", "CCM"}, rep.Roles)
	stop()

	// --reset: only what the flags give is vouched for.
	addr, _, stop = startTVS(t, tvsPEM, "--store", store, "--reset", "--trust", "tftp="+tftpPEM)
	tvsQueryJSON(t, exitInvalid, "--server", addr, "--ca", tvsCrt, sastPEM)
	rep = tvsQueryJSON(t, exitOK, "--server", addr, "--ca", tvsCrt, tftpPEM)
	assert.Equal(t, []string{"TFTP"}, rep.Roles)
	stop()
}

func TestTVSUsageErrors(t *testing.T) {
	dir := t.TempDir()
	tvsPEM, tvsCrt := tvsIdentity(t, dir, "tvs", "TVS-test")
	notList := writeTemp(t, dir, "not.tlv", []byte("not a trust list"))
	serve := func(args ...string) []string {
		return append([]string{"tvs", "serve", "--cert", tvsPEM, "--key", tvsPEM, "--listen", "127.0.0.1:0"}, args...)
	}
	query := func(args ...string) []string { return append([]string{"tvs", "query"}, args...) }
	for _, tt := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"serve: nothing to vouch for", serve(), exitError, "nothing to vouch for"},
		{"serve: no --cert", []string{"tvs", "serve", "--trust", "sast=" + sastPEM}, exitError, "missing --cert"},
		{"serve: --trust without role", serve("--trust", sastPEM), exitError, "invalid --trust"},
		{"serve: --trust unknown role", serve("--trust", "boss="+sastPEM), exitError, `unknown role "boss"`},
		{"serve: --trust role twice", serve("--trust", "sast,SAST="+sastPEM), exitError, "given twice"},
		{"serve: --trust role the TVS does not know", serve("--trust", "99="+sastPEM), exitError, "unknown role 99"},
		{"serve: --trust not a certificate", serve("--trust", "sast="+notList), exitError, notList},
		{"serve: --trust missing file", serve("--trust", "sast="+filepath.Join(dir, "missing.pem")), exitError, "missing.pem"},
		{"serve: --itl not a trust list", serve("--itl", notList), exitError, notList},
		{"serve: --ctl not a trust list", serve("--ctl", notList), exitError, notList},
		{"serve: --ttl 0", serve("--trust", "sast="+sastPEM, "--ttl", "0"), exitError, "--ttl"},
		{"serve: --ttl fraction", serve("--trust", "sast="+sastPEM, "--ttl", "1.5s"), exitError, "--ttl"},
		{"serve: --ttl 31 days", serve("--trust", "sast="+sastPEM, "--ttl", "744h"), exitError, "--ttl"},
		{"serve: --timeout 0", serve("--trust", "sast="+sastPEM, "--timeout", "0"), exitError, "--timeout"},
		{"serve: --max-conns 0", serve("--trust", "sast="+sastPEM, "--max-conns", "0"), exitError, "--max-conns"},
		{"serve: argument", serve("--trust", "sast="+sastPEM, "extra"), exitError, "unexpected argument"},
		{"query: no --server", query("--ca", tvsCrt, sastPEM), exitError, "missing --server"},
		{"query: no --ca", query("--server", "127.0.0.1", sastPEM), exitError, "missing --ca or --itl"},
		{"query: --ca and --itl", query("--server", "127.0.0.1", "--ca", tvsCrt, "--itl", itlVector, sastPEM), exitError, "exclude each other"},
		{"query: no certificate", query("--server", "127.0.0.1", "--ca", tvsCrt), exitError, "missing input file"},
		{"query: not a certificate", query("--server", "127.0.0.1", "--ca", tvsCrt, notList), exitError, notList},
		{"query: --itl not a trust list", query("--server", "127.0.0.1", "--itl", notList, sastPEM), exitError, notList},
		{"query: empty --device", query("--server", "127.0.0.1", "--ca", tvsCrt, "--device", "", sastPEM), exitError, "empty --device"},
		{"query: --timeout 0", query("--server", "127.0.0.1", "--ca", tvsCrt, "--timeout", "0", sastPEM), exitError, "--timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ucsec(t, "", tt.args...).check(t, tt.code, "", tt.msg)
		})
	}

	// An ITL without a TVS record cannot say which TVS to trust.
	itlFile := filepath.Join(dir, "ITLFile.tlv")
	mustRun(t, exitOK, append(buildArgs("--itl", "--record", "ccm+tftp="+tftpPEM), "-o", itlFile)...)
	ucsec(t, "", query("--server", "127.0.0.1", "--itl", itlFile, sastPEM)...).check(t, exitError, "", "no TVS record")
}

// The query help names its exit statuses; serve's says the lists are not
// verified.
func TestTVSHelp(t *testing.T) {
	r := mustRun(t, exitOK, "tvs", "query", "-h")
	for _, want := range []string{"--server HOST[:PORT]", "--ca FILE", "--itl FILE", "--device NAME", "--json", "Exit status 0", "1 if it does not"} {
		assert.Contains(t, r.stdout, want)
	}
	r = mustRun(t, exitOK, "tvs", "serve", "-h")
	for _, want := range []string{"--trust ROLES=CERT", "--store DIR", "--ttl DUR", "(default :2445)", "signatures are not checked", "tvs: listening on ADDR"} {
		assert.Contains(t, r.stdout, want)
	}
}
