package tftpd

import (
	"container/list"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"sync/atomic"
)

// What a cache entry holds: the product of a source file, made for a name.
const (
	kindSigned     uint8 = iota + 1 // NAME.sgn signed from NAME
	kindStripped                    // a configuration without digest credentials
	kindEncrypted                   // DEV.cnf.xml.enc.sgn
	kindShort                       // DEV.cnf.xml.sgn, the short configuration, signed
	kindShortPlain                  // DEV.cnf.xml, the short configuration, unsigned
)

// cacheKey names one product: what was made (kind), for which name,
// from which content (the SHA-256 of the source as read for the request),
// for which phone certificate (SHA-256 of its DER, or zero), with which
// hash and by which signer (SHA-256 of its certificate's DER), and whether
// digest credentials were stripped first. A source that changes has
// another hash, so its products are made again and no stale signature is
// ever served; a new phone certificate has another hash, so a new LSC
// gets a fresh encryption.
type cacheKey struct {
	kind   uint8
	strip  bool
	name   string
	source [sha256.Size]byte
	cert   [sha256.Size]byte
	hash   crypto.Hash
	signer [sha256.Size]byte
}

// slotKey is what only one version is kept of: a newer product for the
// same name and kind replaces the older one.
type slotKey struct {
	kind uint8
	name string
}

type entry struct {
	key  cacheKey
	data []byte
	etag string
}

type flight struct {
	done chan struct{}
	data []byte
	etag string
	err  error
}

// cache keeps signed and encrypted products, least recently used first
// out, within max bytes (0 or less: nothing is kept). Concurrent requests
// for one missing product wait for a single making of it.
type cache struct {
	max int64

	mu      sync.Mutex
	size    int64
	lru     *list.List // of *entry, most recently used at the front
	entries map[cacheKey]*list.Element
	slots   map[slotKey]*list.Element
	flights map[cacheKey]*flight

	hits, made atomic.Uint64
}

func newCache(max int64) *cache {
	return &cache{
		max:     max,
		lru:     list.New(),
		entries: map[cacheKey]*list.Element{},
		slots:   map[slotKey]*list.Element{},
		flights: map[cacheKey]*flight{},
	}
}

// etagOf is the strong entity tag of data: a quoted prefix of its SHA-256.
func etagOf(data []byte) string {
	sum := sha256.Sum256(data)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// get returns the product named by key, making it with build if the cache
// does not hold it and no other request is making it already. shared
// reports that this call did not make it (a hit, or another request's
// making). An error of build is returned to every request that waited for
// it and is not kept. A request whose ctx ends while it waits gets ctx's
// error; the making goes on for the others.
func (c *cache) get(ctx context.Context, key cacheKey, build func() ([]byte, error)) (data []byte, etag string, shared bool, err error) {
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		c.lru.MoveToFront(el)
		e := el.Value.(*entry)
		c.mu.Unlock()
		c.hits.Add(1)
		return e.data, e.etag, true, nil
	}
	if f, ok := c.flights[key]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			if f.err == nil {
				c.hits.Add(1)
			}
			return f.data, f.etag, true, f.err
		case <-ctx.Done():
			return nil, "", true, ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	c.flights[key] = f
	c.mu.Unlock()

	f.data, f.err = build()
	if f.err == nil {
		f.etag = etagOf(f.data)
		c.made.Add(1)
	}
	c.mu.Lock()
	delete(c.flights, key)
	if f.err == nil {
		c.store(key, f.data, f.etag)
	}
	c.mu.Unlock()
	close(f.done)
	return f.data, f.etag, false, f.err
}

// store adds a product, dropping the older version for its slot and the
// least recently used products beyond max. c.mu is held.
func (c *cache) store(key cacheKey, data []byte, etag string) {
	n := int64(len(data))
	if n > c.max {
		return
	}
	sk := slotKey{key.kind, key.name}
	if old, ok := c.slots[sk]; ok {
		c.remove(old)
	}
	for c.size+n > c.max {
		c.remove(c.lru.Back())
	}
	el := c.lru.PushFront(&entry{key: key, data: data, etag: etag})
	c.entries[key] = el
	c.slots[sk] = el
	c.size += n
}

func (c *cache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*entry)
	delete(c.entries, e.key)
	sk := slotKey{e.key.kind, e.key.name}
	if c.slots[sk] == el {
		delete(c.slots, sk)
	}
	c.size -= int64(len(e.data))
}

func (c *cache) usage() (entries int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.size
}
