package cnfenc

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lineConfig is a phone configuration in CUCM's shape with two SIP lines,
// and the things a byte-exact editor must leave alone: a comment and a
// CDATA section that mention the credential elements, attributes, an
// empty-element tag, entities and CRLF line ends.
const lineConfig = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n" +
	"<device xsi:type=\"axl:XIPPhone\" ctiid=\"12\">\r\n" +
	"<fullConfig>true</fullConfig>\r\n" +
	"<!-- <authPassword>not an element</authPassword> -->\r\n" +
	"<sipProfile>\r\n" +
	"  <sipLines>\r\n" +
	"    <line button=\"1\" lineIndex=\"1\">\r\n" +
	"      <featureID>9</featureID>\r\n" +
	"      <name>1001</name>\r\n" +
	"      <authName>1001</authName>\r\n" +
	"      <authPassword>s3cr&amp;t&lt;</authPassword>\r\n" +
	"      <displayName><![CDATA[<authName>x</authName>]]></displayName>\r\n" +
	"    </line>\r\n" +
	"    <line button=\"2\"><name>1002</name><authName\r\n   >1002</authName ><authPassword/><contact>1002</contact></line>\r\n" +
	"  </sipLines>\r\n" +
	"</sipProfile>\r\n" +
	"</device>\r\n"

func TestExcludeDigestCredentials(t *testing.T) {
	in := []byte(lineConfig)
	orig := bytes.Clone(in)
	out, n, err := ExcludeDigestCredentials(in)
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	assert.Equal(t, orig, in, "the input is not changed")

	want := strings.NewReplacer(
		"<authName>1001</authName>", "",
		"<authPassword>s3cr&amp;t&lt;</authPassword>", "",
		"<authName\r\n   >1002</authName >", "",
		"<authPassword/>", "",
	).Replace(lineConfig)
	assert.Equal(t, want, string(out), "exactly the four elements are removed, nothing else changes")

	// Idempotent, and a configuration without credentials is returned
	// byte for byte.
	again, n, err := ExcludeDigestCredentials(out)
	require.NoError(t, err)
	assert.Equal(t, 0, n)
	assert.Equal(t, out, again)

	full := []byte("<device><fullConfig>true</fullConfig></device>")
	same, n, err := ExcludeDigestCredentials(full)
	require.NoError(t, err)
	assert.Equal(t, 0, n)
	assert.Equal(t, full, same)
}

func TestConfigErrors(t *testing.T) {
	for _, bad := range []string{
		"",
		"not xml",
		"<device><authName>x</device>",
		"<device></device><device></device>",
		"<device></device>trailing text",
		"<device>&undefined;</device>",
		"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><device/>",
		strings.Repeat("<a>", 100),
	} {
		_, _, err := ExcludeDigestCredentials([]byte(bad))
		assert.ErrorIs(t, err, ErrConfig, "%q", bad)
		_, err = ParseShortConfig([]byte(bad))
		assert.ErrorIs(t, err, ErrConfig, "%q", bad)
	}
	huge := make([]byte, MaxConfigSize+1)
	_, _, err := ExcludeDigestCredentials(huge)
	assert.ErrorContains(t, err, "more than")
}

func TestShortConfig(t *testing.T) {
	k := loadKeys(t)
	full := []byte(`<?xml version="1.0"?>
<device>
<loadInformation model="Cisco 8841">sip88xx.14-2-1-0101-14</loadInformation>
<fullConfig>true</fullConfig>
<sipProfile><capfList>not this one: not a child of device</capfList></sipProfile>
<capfList>
  <capf><phonePort>3804</phonePort><processNodeName>cucm1</processNodeName></capf>
</capfList>
<capfAuthMode>3</capfAuthMode>
<ipAddressMode>2</ipAddressMode>
<authPassword>never copied</authPassword>
</device>`)
	short, err := ShortConfig(full, k.phone)
	require.NoError(t, err)
	want := `<?xml version="1.0" encoding="UTF-8"?>
<device>
  <fullConfig>false</fullConfig>
  <ipAddressMode>2</ipAddressMode>
  <loadInformation model="Cisco 8841">sip88xx.14-2-1-0101-14</loadInformation>
  <capfAuthMode>3</capfAuthMode>
  <capfList>
  <capf><phonePort>3804</phonePort><processNodeName>cucm1</processNodeName></capf>
</capfList>
  <certHash>08ecfd597f0051d70826703523dc12ac</certHash>
  <encrConfig>true</encrConfig>
</device>
`
	assert.Equal(t, want, string(short))

	info, err := ParseShortConfig(short)
	require.NoError(t, err)
	assert.True(t, info.EncrConfig)
	assert.False(t, info.FullConfig)
	assert.True(t, info.CertHashMatches(k.phone))

	_, err = ShortConfig([]byte("<config><capfList/></config>"), k.phone)
	assert.ErrorContains(t, err, "not <device>")
	_, err = ShortConfig([]byte("<device><capfList/><capfList/></device>"), k.phone)
	assert.ErrorContains(t, err, "more than one <capfList>")
	_, err = ShortConfig(full, nil)
	assert.Error(t, err)

	minimal, err := ShortConfig([]byte("<device/>"), k.phone)
	require.NoError(t, err)
	assert.NotContains(t, string(minimal), "capf")
}

func TestParseShortConfig(t *testing.T) {
	info, err := ParseShortConfig([]byte("<device><fullConfig> true </fullConfig></device>"))
	require.NoError(t, err)
	assert.Equal(t, &ShortConfigInfo{FullConfig: true}, info)

	for _, c := range []struct{ doc, errIn string }{
		{"<device><encrConfig>yes</encrConfig></device>", `"yes", not true or false`},
		{"<device><certHash>a</certHash><certHash>b</certHash></device>", "more than one <certHash>"},
		{"<config/>", "not <device>"},
		{"<device><certHash><b>x</b></certHash></device>", "<certHash>"},
	} {
		_, err := ParseShortConfig([]byte(c.doc))
		assert.ErrorIs(t, err, ErrConfig)
		assert.ErrorContains(t, err, c.errIn)
	}

	bad := &ShortConfigInfo{CertHash: "not hex"}
	assert.False(t, bad.CertHashMatches(loadKeys(t).phone))
}

// TestExcludeDigestCredentialsNamespaces: credentials go whatever their
// namespace or prefix, as a phone that matches on element names alone
// would still read them.
func TestExcludeDigestCredentialsNamespaces(t *testing.T) {
	for name, tc := range map[string]struct {
		in, want string
		n        int
	}{
		"default namespace": {
			`<device xmlns="urn:cisco"><line><authName>1001</authName><authPassword>p</authPassword><name>1001</name></line></device>`,
			`<device xmlns="urn:cisco"><line><name>1001</name></line></device>`, 2,
		},
		"prefixed": {
			`<x:device xmlns:x="urn:cisco"><x:line><x:authName>1001</x:authName><x:authPassword>p</x:authPassword></x:line></x:device>`,
			`<x:device xmlns:x="urn:cisco"><x:line></x:line></x:device>`, 2,
		},
		"prefix on the credentials only": {
			"\uFEFF<device><x:authName xmlns:x='urn:other'>a</x:authName><authName>b</authName></device>",
			"\uFEFF<device></device>", 2,
		},
		"undeclared prefix": {
			`<device><y:authPassword>p</y:authPassword><y:name>1001</y:name></device>`,
			`<device><y:name>1001</y:name></device>`, 1,
		},
		"namespace undone": {
			`<device xmlns="urn:cisco"><line xmlns=""><authPassword/></line></device>`,
			`<device xmlns="urn:cisco"><line xmlns=""></line></device>`, 1,
		},
	} {
		out, n, err := ExcludeDigestCredentials([]byte(tc.in))
		require.NoError(t, err, name)
		assert.Equal(t, tc.n, n, name)
		assert.Equal(t, tc.want, string(out), name)
	}
}

// TestConfigXMLEdges: a namespaced element is not a short configuration's,
// a byte order mark is allowed, and deep nesting is refused.
func TestConfigXMLEdges(t *testing.T) {
	doc := "\uFEFF<device><authName>drop</authName></device>"
	out, n, err := ExcludeDigestCredentials([]byte(doc))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, "\uFEFF<device></device>", string(out))

	_, err = ShortConfig([]byte("<x:device xmlns:x='urn:other'><capfList/></x:device>"), loadKeys(t).phone)
	assert.ErrorContains(t, err, "not <device>")
	info, err := ParseShortConfig([]byte("<device><x:certHash xmlns:x='urn:x'>a</x:certHash><certHash>b</certHash></device>"))
	require.NoError(t, err)
	assert.Equal(t, "b", info.CertHash)

	deep := strings.Repeat("<a>", 65) + strings.Repeat("</a>", 65)
	_, _, err = ExcludeDigestCredentials([]byte(deep))
	assert.ErrorContains(t, err, "nested more than 64 deep")
	ok := strings.Repeat("<a>", 64) + strings.Repeat("</a>", 64)
	_, _, err = ExcludeDigestCredentials([]byte(ok))
	assert.NoError(t, err)
}
