package tftpd

import (
	"bufio"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/cnfenc"
	"github.com/ucsec/ucsec/internal/testnet"
)

func httpGet(t *testing.T, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	method := http.MethodGet
	if len(header) > 0 && header[0] == "HEAD" {
		method, header = http.MethodHead, header[1:]
	}
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

func TestHTTP(t *testing.T) {
	fx := newFixture(t)
	ts := httptest.NewServer(fx.srv)
	defer ts.Close()

	resp, body := httpGet(t, ts.URL+"/RingList.xml.sgn")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, fx.read(t, "RingList.xml"), verifySigned(t, body, "RingList.xml.sgn", fx.cert, crypto.SHA1))
	etag := resp.Header.Get("ETag")
	assert.Regexp(t, `^"[0-9a-f]{32}"$`, etag)
	assert.Equal(t, "application/octet-stream", resp.Header.Get("Content-Type"))

	// unchanged: 304; changed: the new signed file
	resp, body = httpGet(t, ts.URL+"/RingList.xml.sgn", "If-None-Match", etag)
	assert.Equal(t, http.StatusNotModified, resp.StatusCode)
	assert.Empty(t, body)
	fx.replace(t, "RingList.xml", []byte("<new/>"))
	resp, body = httpGet(t, ts.URL+"/RingList.xml.sgn", "If-None-Match", etag)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "<new/>", string(verifySigned(t, body, "RingList.xml.sgn", fx.cert, crypto.SHA1)))
	assert.NotEqual(t, etag, resp.Header.Get("ETag"))

	// plain files have a Last-Modified and an ETag too
	resp, body = httpGet(t, ts.URL+"/English_United_States/g3-tones.xml")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, fx.read(t, "English_United_States/g3-tones.xml"), body)
	assert.NotEmpty(t, resp.Header.Get("Last-Modified"))
	resp, _ = httpGet(t, ts.URL+"/English_United_States/g3-tones.xml", "If-None-Match", resp.Header.Get("ETag"))
	assert.Equal(t, http.StatusNotModified, resp.StatusCode)

	resp, body = httpGet(t, ts.URL+"/"+testDevice+".cnf.xml", "HEAD")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, fmt.Sprint(len(fx.read(t, testDevice+".cnf.xml"))), resp.Header.Get("Content-Length"))
	assert.Empty(t, body)

	resp, body = httpGet(t, ts.URL+"/"+testDevice+".cnf.xml", "Range", "bytes=0-4")
	assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.Equal(t, "<?xml", string(body))

	for path, status := range map[string]int{
		"/missing":                http.StatusNotFound,
		"/":                       http.StatusForbidden,
		"/..%2f..%2fetc%2fpasswd": http.StatusForbidden,
		"/a%00b":                  http.StatusForbidden,
		"/a%5cb":                  http.StatusForbidden,
		"//etc/passwd":            http.StatusForbidden,
		"/English_United_States":  http.StatusForbidden,
	} {
		resp, _ := rawHTTP(t, ts.Listener.Addr().String(), "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		assert.Equal(t, status, resp.StatusCode, path)
	}
	resp, err := http.Post(ts.URL+"/RingList.xml", "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))

	assert.Contains(t, fx.logs.String(), "proto=http client=127.0.0.1:")
	assert.Contains(t, fx.logs.String(), `result="not modified"`)
}

// rawHTTP sends a request as written, so that the client cleans no path.
func rawHTTP(t *testing.T, addr, req string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, req)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// A phone fetching its encrypted configuration over HTTP decrypts it with
// its key.
func TestHTTPEncrypted(t *testing.T) {
	fx := newFixture(t)
	fx.srv.Encrypt = EncryptAll
	fx.srv.PhoneCertificates = staticCerts{testDevice: fx.phone}
	ts := httptest.NewServer(fx.srv)
	defer ts.Close()
	resp, body := httpGet(t, ts.URL+"/"+testDevice+".cnf.xml.enc.sgn")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	plain, err := cnfenc.Decrypt(body, fx.cert, fx.phoneKy.(crypto.Decrypter))
	require.NoError(t, err)
	assert.Equal(t, fx.read(t, testDevice+".cnf.xml"), plain)
	resp, _ = httpGet(t, ts.URL+"/"+testDevice+".cnf.xml.enc.sgn", "If-None-Match", resp.Header.Get("ETag"))
	assert.Equal(t, http.StatusNotModified, resp.StatusCode)
	assert.Contains(t, fx.logs.String(), "encrypted=true cached=true")
}

func TestHTTPBusyAndFailClosed(t *testing.T) {
	fx := newFixture(t)
	fx.srv.MaxFileSize = 100
	fx.srv.Encrypt = EncryptAll
	fx.srv.PhoneCertificates = failingCerts{}
	ts := httptest.NewServer(fx.srv)
	defer ts.Close()
	resp, _ := httpGet(t, ts.URL+"/"+testDevice+".cnf.xml")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	resp, _ = httpGet(t, ts.URL+"/"+"default.cnf.xml.sgn")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	// a host over its share is told to come back
	fx2 := newFixture(t)
	fx2.srv.MaxPerHost = 1
	sl, err := fx2.srv.limitFor(t).acquire(netipLoopback)
	require.NoError(t, err)
	ts2 := httptest.NewServer(fx2.srv)
	defer ts2.Close()
	resp, _ = httpGet(t, ts2.URL+"/RingList.xml")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	sl.release()
	resp, _ = httpGet(t, ts2.URL+"/RingList.xml")
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// a misconfigured server answers 500
	bad := &Server{}
	rec := httptest.NewRecorder()
	bad.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
}

func TestServeHTTPListener(t *testing.T) {
	fx := newFixture(t)
	fx.srv.ShutdownTimeout = 100 * time.Millisecond
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fx.srv.ServeHTTPListener(ctx, l) }()
	resp, body := httpGet(t, "http://"+l.Addr().String()+"/RingList.xml")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, fx.read(t, "RingList.xml"), body)
	// a connection that sends half a request does not hold up shutdown
	c, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	io.WriteString(c, "GET /RingList.xml HTTP/1.1\r\n")
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(testnet.Patience(t)):
		t.Fatal("ServeHTTPListener did not return")
	}
	_, err = http.Get("http://" + l.Addr().String() + "/RingList.xml")
	assert.True(t, err != nil && !errors.Is(err, context.Canceled))
}
