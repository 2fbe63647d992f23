package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func write(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func claims(mod func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "alice", "iss": "issuer", "aud": "sandboxd", "exp": time.Now().Add(time.Hour).Unix()}
	if mod != nil {
		mod(c)
	}
	return c
}

func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHS256(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	v, err := NewVerifier(Config{SecretFile: write(t, "s", append(secret, '\n')), Issuer: "issuer", Audience: "sandboxd"})
	if err != nil {
		t.Fatal(err)
	}
	good := sign(t, jwt.SigningMethodHS256, secret, claims(nil), "")
	if c, err := v.Verify(good); err != nil || c.Subject != "alice" {
		t.Fatalf("good token: %v %v", c, err)
	}
	bad := map[string]string{
		"wrong secret": sign(t, jwt.SigningMethodHS256, []byte("another secret of thirty-two bytes!"), claims(nil), ""),
		"expired":      sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), ""),
		"no exp":       sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "exp") }), ""),
		"not yet":      sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), ""),
		"issuer":       sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["iss"] = "other" }), ""),
		"audience":     sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["aud"] = "other" }), ""),
		"no subject":   sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "sub") }), ""),
		"HS512":        sign(t, jwt.SigningMethodHS512, secret, claims(nil), ""),
		"none":         sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil), ""),
		"zero limit":   sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c[LimitsClaim] = map[string]any{"memory_bytes": 0} }), ""),
		"zero files":   sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c[LimitsClaim] = map[string]any{"open_files": -5} }), ""),
		"zero cores":   sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c[LimitsClaim] = map[string]any{"cpus": 0} }), ""),
		"garbage":      "not.a.token",
	}
	for name, tok := range bad {
		if _, err := v.Verify(tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: %v, want ErrInvalidToken", name, err)
		}
	}
	if _, err := NewVerifier(Config{SecretFile: write(t, "short", []byte("short"))}); err == nil {
		t.Error("a short secret was accepted")
	}
}

// A verifier with only an RSA public key must not accept an HS256 token
// whose "secret" is that public key (alg confusion).
func TestNoAlgorithmConfusion(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	v, err := NewVerifier(Config{PublicKeyFile: write(t, "pub.pem", pemBytes)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, key, claims(nil), "")); err != nil {
		t.Fatalf("RS256: %v", err)
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, pemBytes, claims(nil), "")); err == nil {
		t.Fatal("HS256 signed with the public key was accepted")
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, der, claims(nil), "")); err == nil {
		t.Fatal("HS256 signed with the DER public key was accepted")
	}
}

func b64(i *big.Int) string { return base64.RawURLEncoding.EncodeToString(i.Bytes()) }

func TestJWKS(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set := map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "r1", "use": "sig", "n": b64(rk.N), "e": b64(big.NewInt(int64(rk.E)))},
		{"kty": "EC", "kid": "e1", "crv": "P-256", "x": b64(ek.X), "y": b64(ek.Y)},
		{"kty": "EC", "kid": "e2", "crv": "P-256", "x": b64(other.X), "y": b64(other.Y)},
		{"kty": "EC", "kid": "enc", "use": "enc", "crv": "P-256", "x": b64(other.X), "y": b64(other.Y)},
	}}
	data, _ := json.Marshal(set)
	v, err := NewVerifier(Config{JWKSFile: write(t, "jwks.json", data)})
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"RS256 with kid":    sign(t, jwt.SigningMethodRS256, rk, claims(nil), "r1"),
		"ES256 with kid":    sign(t, jwt.SigningMethodES256, ek, claims(nil), "e1"),
		"ES256 without kid": sign(t, jwt.SigningMethodES256, ek, claims(nil), ""),
	} {
		if _, err := v.Verify(tok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodES256, ek, claims(nil), "e2")); err == nil {
		t.Error("a token naming another key's kid was accepted")
	}
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := v.Verify(sign(t, jwt.SigningMethodES256, stranger, claims(nil), "")); err == nil {
		t.Error("a token of an unknown key was accepted")
	}
}
