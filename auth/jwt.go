// Package auth identifies sandboxd's callers: JSON Web Tokens (checked with
// golang-jwt/jwt/v5) and the peer credentials of Unix-socket connections.
package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/limits"
)

// LimitsClaim is the private claim through which a token narrows the limits
// of its bearer's runs (same fields as the API's limits). It can only lower
// the daemon's maxima, never raise them.
const LimitsClaim = "sandboxd_limits"

// ErrInvalidToken is every token failure. Which check failed goes to the
// daemon's debug log only, never to the client.
var ErrInvalidToken = errdefs.New(errdefs.ErrUnauthorized, "invalid token")

// Config says where the keys are and what the claims must say.
type Config struct {
	SecretFile    string // HS256 shared secret (at least 32 bytes; surrounding whitespace is trimmed)
	PublicKeyFile string // PEM: RSA (RS256) or EC P-256 (ES256) public key or certificate
	JWKSFile      string // a JSON Web Key Set with RSA and EC P-256 keys
	Issuer        string // required "iss" when set
	Audience      string // required in "aud" when set
	Leeway        time.Duration
}

// Enabled reports whether any key source is configured.
func (c Config) Enabled() bool {
	return c.SecretFile != "" || c.PublicKeyFile != "" || c.JWKSFile != ""
}

// Claims are a verified token's claims.
type Claims struct {
	jwt.RegisteredClaims
	Limits *api.Limits `json:"sandboxd_limits,omitempty"`
}

type pubKey struct {
	kid string
	alg string // "RS256" or "ES256"
	key crypto.PublicKey
}

// Verifier checks tokens. It is safe for concurrent use.
type Verifier struct {
	secret  []byte
	keys    []pubKey
	methods []string
	parser  *jwt.Parser
}

// NewVerifier loads the keys of c. The algorithms allowed are exactly those
// of the keys loaded: HS256 only with a secret, RS256 only with RSA keys,
// ES256 only with P-256 keys; "none" never.
func NewVerifier(c Config) (*Verifier, error) {
	if !c.Enabled() {
		return nil, errors.New("jwt: no key configured (jwt_secret_file, jwt_public_key_file or jwt_jwks_file)")
	}
	v := &Verifier{}
	if c.SecretFile != "" {
		data, err := os.ReadFile(c.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("jwt secret: %w", err)
		}
		v.secret = bytes.TrimSpace(data)
		if len(v.secret) < 32 {
			return nil, fmt.Errorf("jwt secret %s: %d bytes, at least 32 are needed for HS256", c.SecretFile, len(v.secret))
		}
	}
	if c.PublicKeyFile != "" {
		k, err := loadPEM(c.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		v.keys = append(v.keys, k...)
	}
	if c.JWKSFile != "" {
		k, err := loadJWKS(c.JWKSFile)
		if err != nil {
			return nil, err
		}
		v.keys = append(v.keys, k...)
	}
	if v.secret != nil {
		v.methods = append(v.methods, "HS256")
	}
	for _, alg := range []string{"RS256", "ES256"} {
		for _, k := range v.keys {
			if k.alg == alg {
				v.methods = append(v.methods, alg)
				break
			}
		}
	}
	if len(v.methods) == 0 {
		return nil, errors.New("jwt: the configured files hold no usable key")
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(c.Leeway),
		jwt.WithStrictDecoding(),
	}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Methods lists the algorithms this verifier accepts.
func (v *Verifier) Methods() []string { return v.methods }

// Verify checks the signature, exp (required), nbf, iss, aud and sub
// (required) of token. Every failure wraps ErrInvalidToken; the wrapped
// detail is for the daemon's log.
func (v *Verifier) Verify(token string) (*Claims, error) {
	var c Claims
	_, err := v.parser.ParseWithClaims(token, &c, v.keyFunc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if c.Subject == "" {
		return nil, fmt.Errorf("%w: no subject", ErrInvalidToken)
	}
	if name := limits.NotPositive(c.Limits); name != "" {
		return nil, fmt.Errorf("%w: %s.%s is not positive", ErrInvalidToken, LimitsClaim, name)
	}
	return &c, nil
}

// keyFunc hands the parser only keys of the token's algorithm, so that an
// RSA public key can never be used as an HMAC secret (alg confusion). The
// parser has already refused algorithms outside the allow-list.
func (v *Verifier) keyFunc(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg == "HS256" {
		if v.secret == nil {
			return nil, errors.New("no HS256 secret")
		}
		return v.secret, nil
	}
	kid, _ := t.Header["kid"].(string)
	var set []jwt.VerificationKey
	for _, k := range v.keys {
		if k.alg == alg && (kid == "" || k.kid == "" || k.kid == kid) {
			set = append(set, k.key)
		}
	}
	switch len(set) {
	case 0:
		return nil, fmt.Errorf("no %s key (kid %q)", alg, kid)
	case 1:
		return set[0], nil
	}
	return jwt.VerificationKeySet{Keys: set}, nil
}

func loadPEM(path string) ([]pubKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("jwt public key: %w", err)
	}
	var out []pubKey
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var key any
		switch b.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(b.Bytes); err == nil {
				key = cert.PublicKey
			}
		default:
			continue // private keys and the like are not for us
		}
		if err != nil {
			return nil, fmt.Errorf("jwt public key %s: %w", path, err)
		}
		k, err := usable("", key)
		if err != nil {
			return nil, fmt.Errorf("jwt public key %s: %w", path, err)
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("jwt public key %s: no PUBLIC KEY or CERTIFICATE block", path)
	}
	return out, nil
}

func usable(kid string, key any) (pubKey, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return pubKey{}, fmt.Errorf("RSA key of %d bits: at least 2048 are needed", k.N.BitLen())
		}
		return pubKey{kid, "RS256", k}, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return pubKey{}, fmt.Errorf("EC key on %s: only P-256 (ES256) is accepted", k.Curve.Params().Name)
		}
		return pubKey{kid, "ES256", k}, nil
	}
	return pubKey{}, fmt.Errorf("unsupported key type %T (RSA or EC P-256)", key)
}

// jwk holds the fields of a JSON Web Key (RFC 7517/7518) that sandboxd uses.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// loadJWKS reads RSA and EC P-256 public keys from a JWK Set. Keys meant
// for encryption ("use": "enc"), for other algorithms, or of other types
// are skipped; a malformed key is an error.
func loadJWKS(path string) ([]pubKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("jwks %s: %w", path, err)
	}
	var out []pubKey
	for i, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		var key any
		switch {
		case k.Kty == "RSA" && (k.Alg == "" || k.Alg == "RS256"):
			n, err1 := b64int(k.N)
			e, err2 := b64int(k.E)
			if err := errors.Join(err1, err2); err != nil || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
				return nil, fmt.Errorf("jwks %s: key %d: bad RSA modulus or exponent", path, i)
			}
			key = &rsa.PublicKey{N: n, E: int(e.Int64())}
		case k.Kty == "EC" && k.Crv == "P-256" && (k.Alg == "" || k.Alg == "ES256"):
			x, err1 := b64int(k.X)
			y, err2 := b64int(k.Y)
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("jwks %s: key %d: bad EC coordinates", path, i)
			}
			pk := &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}
			if _, err := pk.ECDH(); err != nil { // checks the point is on the curve
				return nil, fmt.Errorf("jwks %s: key %d: point not on P-256", path, i)
			}
			key = pk
		default:
			continue
		}
		pk, err := usable(k.Kid, key)
		if err != nil {
			return nil, fmt.Errorf("jwks %s: key %d: %w", path, i, err)
		}
		out = append(out, pk)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("jwks %s: no RS256 or ES256 signing key", path)
	}
	return out, nil
}

func b64int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, errors.New("bad base64url integer")
	}
	return new(big.Int).SetBytes(b), nil
}
