package digest

import (
	"context"
	"sync"
)

// MemoryStore is a CredentialStore and UserHashStore in memory, safe for
// concurrent use. It holds HA1 values, not passwords.
type MemoryStore struct {
	mu    sync.RWMutex
	ha1   map[storeKey]string // by user
	users map[storeKey]string // user by userhash
}

type storeKey struct {
	name, realm string
	hash        Algorithm // the plain algorithm: MD5, SHA-256 or SHA-512-256
}

// plain returns the algorithm without -sess: the one whose HA1 a -sess
// algorithm starts from.
func (a Algorithm) plain() Algorithm {
	switch a.canonical() {
	case MD5Sess:
		return MD5
	case SHA256Sess:
		return SHA256
	case SHA512_256Sess:
		return SHA512_256
	}
	return a.canonical()
}

// AddPassword stores the HA1 values (and user hashes) of username in realm
// for MD5, SHA-256 and SHA-512-256, and forgets the password.
func (m *MemoryStore) AddPassword(username, realm, password string) {
	for _, a := range []Algorithm{MD5, SHA256, SHA512_256} {
		m.AddHA1(username, realm, a, HA1(a, username, realm, password))
	}
}

// AddHA1 stores the HA1 of username in realm for alg's hash.
func (m *MemoryStore) AddHA1(username, realm string, alg Algorithm, ha1 string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ha1 == nil {
		m.ha1, m.users = map[storeKey]string{}, map[storeKey]string{}
	}
	a := alg.plain()
	m.ha1[storeKey{username, realm, a}] = ha1
	m.users[storeKey{UserHash(a, username, realm), realm, a}] = username
}

// HA1 implements CredentialStore.
func (m *MemoryStore) HA1(_ context.Context, username, realm string, alg Algorithm) (string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if h, ok := m.ha1[storeKey{username, realm, alg.plain()}]; ok {
		return h, nil
	}
	return "", ErrUnknownUser
}

// UserByHash implements UserHashStore.
func (m *MemoryStore) UserByHash(_ context.Context, hash, realm string, alg Algorithm) (string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if u, ok := m.users[storeKey{hash, realm, alg.plain()}]; ok {
		return u, nil
	}
	return "", ErrUnknownUser
}
