package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/cnfenc"
)

// Phones fetch over TFTP by default, and over HTTP with Files "http"; the
// file service serves both, and a tampered configuration is refused over
// either.
func TestFilesOverTFTPAndHTTP(t *testing.T) {
	pki, err := provPKI()
	require.NoError(t, err)
	for _, files := range []string{"", filesHTTP} {
		t.Run("files="+files, func(t *testing.T) {
			c, err := startCluster(t.Context(), pki, t.TempDir(), &clusterOptions{Files: files}, nil)
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, c.close()) })
			c.setSIP(0, "127.0.0.1:5061", "127.0.0.1:5060")
			scheme := "tftp://"
			if files == filesHTTP {
				scheme = "http://"
			}
			require.True(t, strings.HasPrefix(c.FileURL, scheme), c.FileURL)

			secure, plain := provPhone(1, true), provPhone(2, false)
			_, r := provProvision(t, c, secure)
			assert.Equal(t, "encrypted", r.Config)
			_, r = provProvision(t, c, plain)
			assert.Equal(t, "signed", r.Config)
			require.NoError(t, negTamperedConfig(t.Context(), c, secure))
			require.NoError(t, negTamperedConfig(t.Context(), c, plain))
			st := c.files.Stats()
			assert.Positive(t, st.Transfers)
			assert.Zero(t, st.Signatures, "the cluster's files are served as they are")

			// the same bytes over the other protocol
			ctx := t.Context()
			name := cnfenc.EncryptedName(secure.Device)
			viaTFTP, err := download(ctx, nil, "tftp://"+c.TFTPAddr+"/", name)
			require.NoError(t, err)
			viaHTTP, err := download(ctx, defaultHTTP, "http://"+c.HTTPAddr+"/", name)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(viaTFTP, viaHTTP))
			_, err = download(ctx, nil, "tftp://"+c.TFTPAddr+"/", "missing.xml")
			assert.ErrorContains(t, err, "not found")
		})
	}
}

func TestFilesFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-files", "ftp"}, &stdout, &stderr); code != exitError || !strings.Contains(stderr.String(), "want tftp or http") {
		t.Errorf("-files ftp: exit %d\n%s", code, stderr.String())
	}
}
