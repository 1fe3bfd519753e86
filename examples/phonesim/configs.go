package main

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"text/template"
)

// The phone configuration file, SEP<MAC>.cnf.xml: what the cluster writes
// (fullConfig) and what a phone reads back (parseFullConfig).

// Device security modes of <deviceSecurityMode>, as CUCM writes them.
const (
	securityModeNonSecure = 1
	securityModeEncrypted = 3
)

// CAPF authentication modes of <capfAuthMode> as the phone reads them (the
// numbers of the AUTH_TYPE element of the CAPF protocol): 0 means no CAPF
// operation for the phone, 1 "By Authentication String".
const (
	capfAuthModeNone   = 0
	capfAuthModeString = 1
)

// phoneLoad is the firmware load the configurations name in
// <loadInformation>; the simulated phones do not check it.
const phoneLoad = "sip88xx.14-2-1-0101-15"

// configData is what fullConfig writes into a phone's configuration.
type configData struct {
	Device, Extension  string
	SecurityMode       int
	Nodes              []configNode // the phone's CallManager group, in order: it registers with the first
	LinePort           int          // the line's <port>: the first node's SIPSPort for a secure phone
	AuthName, Password string       // the line's SIP digest credentials
	CAPFAuthMode       int
	Load               string
}

// A configNode is one node of a phone's CallManager group, as its
// configuration names it: a member of <callManagerGroup>, and an entry of
// <capfList>.
type configNode struct {
	Name              string // the node's address, <processNodeName>
	SIPPort, SIPSPort int    // <sipPort> (TCP) and <securedSipPort> (TLS)
	TVSPort           int    // <tvsPort>, see configTemplate
	CAPFPort          int    // <phonePort> of its <capf>
}

// configTemplate is a phone configuration with the elements a CUCM SIP
// phone configuration has that the simulation uses, in the same places:
// the CallManager group with its nodes and their ports, in the order the
// phone tries them (member priority 0 first), one line with its digest
// credentials (authName, authPassword: cnfenc.ExcludeDigestCredentials
// would remove them), and the CAPF settings that the short configuration
// copies (ipAddressMode, loadInformation, capfAuthMode, capfList).
// <deviceName> is not a CUCM element: the simulated phone checks it
// against its own name, as a second check beside the signed file name.
// <tvsPort> is not one either: a phone asks the TVS of the nodes of its
// group on CUCM's fixed port 2445, and the simulation's nodes listen on
// ports the system chooses.
var configTemplate = template.Must(template.New("cnf.xml").Funcs(template.FuncMap{"x": xmlText}).Parse(
	`<?xml version="1.0" encoding="UTF-8"?>
<device>
  <fullConfig>true</fullConfig>
  <deviceProtocol>SIP</deviceProtocol>
  <deviceName>{{x .Device}}</deviceName>
  <ipAddressMode>0</ipAddressMode>
  <devicePool>
    <name>Default</name>
    <callManagerGroup>
      <name>Default</name>
      <members>
{{- range $i, $n := .Nodes}}
        <member priority="{{$i}}">
          <callManager>
            <name>{{x $n.Name}}</name>
            <ports>
              <ethernetPhonePort>2000</ethernetPhonePort>
              <sipPort>{{$n.SIPPort}}</sipPort>
              <securedSipPort>{{$n.SIPSPort}}</securedSipPort>
              <tvsPort>{{$n.TVSPort}}</tvsPort>
            </ports>
            <processNodeName>{{x $n.Name}}</processNodeName>
          </callManager>
        </member>
{{- end}}
      </members>
    </callManagerGroup>
  </devicePool>
  <sipProfile>
    <phoneLabel>{{x .Extension}}</phoneLabel>
    <sipProxies>
      <registerWithProxy>true</registerWithProxy>
    </sipProxies>
    <sipLines>
      <line button="1">
        <featureID>9</featureID>
        <featureLabel>{{x .Extension}}</featureLabel>
        <proxy>USECALLMANAGER</proxy>
        <port>{{.LinePort}}</port>
        <name>{{x .Extension}}</name>
        <displayName>Phone {{x .Extension}}</displayName>
        <contact>{{x .Extension}}</contact>
        <authName>{{x .AuthName}}</authName>
        <authPassword>{{x .Password}}</authPassword>
      </line>
    </sipLines>
  </sipProfile>
  <loadInformation>{{x .Load}}</loadInformation>
  <deviceSecurityMode>{{.SecurityMode}}</deviceSecurityMode>
  <capfAuthMode>{{.CAPFAuthMode}}</capfAuthMode>
  <capfList>
{{- range .Nodes}}
    <capf>
      <phonePort>{{.CAPFPort}}</phonePort>
      <processNodeName>{{x .Name}}</processNodeName>
    </capf>
{{- end}}
  </capfList>
  <encrConfig>false</encrConfig>
</device>
`))

// xmlText escapes s for XML character data.
func xmlText(s string) (string, error) {
	var b bytes.Buffer
	err := xml.EscapeText(&b, []byte(s))
	return b.String(), err
}

// fullConfig returns the full configuration of a phone.
func fullConfig(d configData) ([]byte, error) {
	var b bytes.Buffer
	if err := configTemplate.Execute(&b, d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// deviceConfig is what a phone reads from its full configuration.
type deviceConfig struct {
	XMLName      xml.Name       `xml:"device"`
	FullConfig   bool           `xml:"fullConfig"`
	DeviceName   string         `xml:"deviceName"`
	SecurityMode int            `xml:"deviceSecurityMode"`
	Members      []configMember `xml:"devicePool>callManagerGroup>members>member"`
	Lines        []struct {
		Button       int    `xml:"button,attr"`
		Name         string `xml:"name"`
		AuthName     string `xml:"authName"`
		AuthPassword string `xml:"authPassword"`
	} `xml:"sipProfile>sipLines>line"`
	CAPFAuthMode int `xml:"capfAuthMode"`
}

// A configMember is a member of the CallManager group as a phone reads it.
type configMember struct {
	Priority int    `xml:"priority,attr"`
	Node     string `xml:"callManager>processNodeName"`
	SIPPort  int    `xml:"callManager>ports>sipPort"`
	SIPSPort int    `xml:"callManager>ports>securedSipPort"`
	TVSPort  int    `xml:"callManager>ports>tvsPort"`
}

// phoneSettings are the settings a phone takes from its configuration.
type phoneSettings struct {
	Extension string
	// SIPServer is the first node's SIP address, host:port (the TLS port
	// for a secure phone); SIPServers are every node's, in the order of
	// the CallManager group, SIPServer first: the phone fails over to
	// them in that order.
	SIPServer  string
	SIPServers []string
	// TVSServers are the nodes' TVS addresses, host:port, in the same
	// order (those with a <tvsPort>).
	TVSServers         []string
	AuthName, Password string
	SecurityMode       int
}

// parseFullConfig reads a full configuration for device and returns the
// settings of its first line and its CallManager group.
func parseFullConfig(data []byte, device string) (*phoneSettings, error) {
	var d deviceConfig
	if err := xml.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	switch {
	case !d.FullConfig:
		return nil, errors.New("configuration: not a full configuration")
	case d.DeviceName != device:
		return nil, fmt.Errorf("configuration: for device %q, not %q", d.DeviceName, device)
	case len(d.Members) == 0:
		return nil, errors.New("configuration: no CallManager")
	}
	s := &phoneSettings{SecurityMode: d.SecurityMode}
	for _, l := range d.Lines {
		if l.Button == 1 {
			s.Extension, s.AuthName, s.Password = l.Name, l.AuthName, l.AuthPassword
		}
	}
	if s.Extension == "" {
		return nil, errors.New("configuration: no line on button 1")
	}
	members := slices.Clone(d.Members)
	slices.SortStableFunc(members, func(a, b configMember) int { return cmp.Compare(a.Priority, b.Priority) })
	for _, cm := range members {
		port := cm.SIPPort
		if d.SecurityMode == securityModeEncrypted {
			port = cm.SIPSPort
		}
		if cm.Node == "" || port <= 0 || port > 65535 {
			return nil, errors.New("configuration: a CallManager without a SIP server address")
		}
		s.SIPServers = append(s.SIPServers, net.JoinHostPort(cm.Node, strconv.Itoa(port)))
		if cm.TVSPort > 0 && cm.TVSPort <= 65535 {
			s.TVSServers = append(s.TVSServers, net.JoinHostPort(cm.Node, strconv.Itoa(cm.TVSPort)))
		}
	}
	s.SIPServer = s.SIPServers[0]
	return s, nil
}
