package runtime

import "unicode/utf8"

// Ring keeps the last Limit bytes written to it, in a buffer that grows
// to Limit and no further: a detached program's log, however long it
// runs, costs a fixed amount of the daemon's memory and each byte is
// copied once.
type Ring struct {
	Limit int64
	buf   []byte
	start int  // where the oldest byte is, once buf is full
	cut   bool // bytes were dropped from the front
}

// Write keeps p's bytes, dropping the oldest beyond Limit.
func (r *Ring) Write(p []byte) {
	limit := int(r.Limit)
	if len(p) >= limit {
		r.cut = r.cut || len(p) > limit || len(r.buf) > 0
		r.grow(limit)
		r.buf = append(r.buf[:0], p[len(p)-limit:]...)
		r.start = 0
		return
	}
	if room := limit - len(r.buf); room > 0 {
		n := min(room, len(p))
		r.grow(len(r.buf) + n)
		r.buf = append(r.buf, p[:n]...)
		p = p[n:]
	}
	for len(p) > 0 {
		n := copy(r.buf[r.start:], p)
		p = p[n:]
		r.start = (r.start + n) % len(r.buf)
		r.cut = true
	}
}

// grow makes room for n bytes, doubling the buffer but never past Limit.
func (r *Ring) grow(n int) {
	if n <= cap(r.buf) {
		return
	}
	nb := make([]byte, len(r.buf), min(int(r.Limit), max(2*cap(r.buf), n, 4096)))
	copy(nb, r.buf)
	r.buf = nb
}

// Bytes returns a copy of what is kept, oldest first. When bytes were
// dropped, a character cut at the front goes too.
func (r *Ring) Bytes() []byte {
	out := make([]byte, 0, len(r.buf))
	out = append(append(out, r.buf[r.start:]...), r.buf[:r.start]...)
	if r.cut {
		out = TrimToRune(out)
	}
	return out
}

// Cut reports whether bytes were dropped from the front.
func (r *Ring) Cut() bool { return r.cut }

// TrimToRune drops the continuation bytes a cut left at the start of b
// (at most three), so that text cut from its front stays text.
func TrimToRune(b []byte) []byte {
	for i := 0; i < len(b) && i < utf8.UTFMax-1; i++ {
		if utf8.RuneStart(b[i]) {
			return b[i:]
		}
	}
	return b
}
