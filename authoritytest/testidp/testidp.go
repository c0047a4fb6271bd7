package testidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// ClientID is the OP's one client: the audience of its access tokens.
const ClientID = "svc"

const (
	clientSecret = "svc-secret"
	redirectURI  = "https://svc.example/callback"
	tokenTTL     = 10 * time.Minute
)

// IdP is a running OpenID Provider.
type IdP struct {
	// URL is the issuer: the "iss" of its tokens.
	URL string

	srv *httptest.Server
	st  *storage
}

// Start starts an OP on loopback; it stops when the test ends.
func Start(t testing.TB) *IdP {
	t.Helper()
	st := newStorage()
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	p := &IdP{URL: srv.URL, srv: srv, st: st}
	var key [32]byte
	rand.Read(key[:])
	provider, err := op.NewProvider(&op.Config{CryptoKey: key, AuthMethodPost: true}, st, op.StaticIssuer(srv.URL), op.WithAllowInsecure())
	if err != nil {
		srv.Close()
		t.Fatalf("testidp: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", p.login)
	mux.Handle("/", provider)
	handler = mux
	t.Cleanup(srv.Close)
	return p
}

// Close takes the OP away: fetches of its discovery document and keys fail.
func (p *IdP) Close() { p.srv.Close() }

// Login logs user in through the authorization code flow and returns the
// access token the OP issued for the new login session.
func (p *IdP) Login(ctx context.Context, user string) (string, error) {
	p.st.mu.Lock()
	p.st.nextUser = user
	p.st.mu.Unlock()
	var code string
	hc := &http.Client{CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), redirectURI) {
			code = req.URL.Query().Get("code")
			return http.ErrUseLastResponse
		}
		return nil
	}}
	q := url.Values{"client_id": {ClientID}, "redirect_uri": {redirectURI}, "response_type": {"code"},
		"scope": {"openid profile"}, "state": {"st"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/authorize?"+q.Encode(), nil)
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("testidp: authorize: %w", err)
	}
	resp.Body.Close()
	if code == "" {
		return "", fmt.Errorf("testidp: no code (last status %s)", resp.Status)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI},
		"client_id": {ClientID}, "client_secret": {clientSecret}}
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("testidp: token: %w", err)
	}
	defer resp.Body.Close()
	var tr oidc.AccessTokenResponse
	if err := jsonDecode(resp, &tr); err != nil {
		return "", err
	}
	return tr.AccessToken, nil
}

// login is the OP's login page: it logs in the user Login named, in a new
// login session, and sends the browser back to the OP's callback.
func (p *IdP) login(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	p.st.mu.Lock()
	ar, ok := p.st.authRequests[id]
	if ok {
		p.st.sessions++
		ar.userID, ar.sessionID, ar.done, ar.authTime = p.st.nextUser, fmt.Sprintf("idp-session-%d", p.st.sessions), true, time.Now()
	}
	p.st.mu.Unlock()
	if !ok {
		http.Error(w, "unknown auth request", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, p.URL+"/authorize/callback?id="+url.QueryEscape(id), http.StatusFound)
}

// RotateKey makes a new RS256 key the signing key; the old ones stay in
// the JWKS until DropOldKeys.
func (p *IdP) RotateKey() { p.st.rotate() }

// DropOldKeys removes every key but the signing key from the JWKS.
func (p *IdP) DropOldKeys() {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.keys = p.st.keys[len(p.st.keys)-1:]
}

// KeyID is the signing key's kid.
func (p *IdP) KeyID() string {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	return p.st.keys[len(p.st.keys)-1].id
}

// PublicKey is the signing key's public half.
func (p *IdP) PublicKey() *rsa.PublicKey {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	return &p.st.keys[len(p.st.keys)-1].priv.PublicKey
}

// Sign signs claims with the OP's signing key (RS256, its kid), for
// tokens the flow does not make (expired, not yet valid, another
// audience): they are what a token of this OP with those claims is.
func (p *IdP) Sign(claims jwt.MapClaims) string {
	p.st.mu.Lock()
	k := p.st.keys[len(p.st.keys)-1]
	p.st.mu.Unlock()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = k.id
	s, err := t.SignedString(k.priv)
	if err != nil {
		panic(err)
	}
	return s
}

// storage is the OP's state: clients (one), auth requests, keys.
type storage struct {
	mu           sync.Mutex
	authRequests map[string]*authRequest
	codes        map[string]string // code -> auth request ID
	keys         []rsaKey          // the last signs
	nextUser     string
	sessions     int
	tokens       int
	// pendingSID carries the login session of the token being made from
	// CreateAccessToken to GetPrivateClaimsFromScopes (the OP calls them
	// in that order, for one request at a time in these tests).
	pendingSID map[string]string // user ID -> sid
}

type rsaKey struct {
	id   string
	priv *rsa.PrivateKey
}

func newStorage() *storage {
	s := &storage{authRequests: map[string]*authRequest{}, codes: map[string]string{}, pendingSID: map[string]string{}}
	s.rotate()
	return s
}

func (s *storage) rotate() {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Random kids: two OPs of one test never share one.
	s.keys = append(s.keys, rsaKey{id: fmt.Sprintf("idp-key-%d-%x", len(s.keys)+1, priv.N.Bytes()[:4]), priv: priv})
}

// The op.Storage methods.

func (s *storage) CreateAuthRequest(_ context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar := &authRequest{id: fmt.Sprintf("ar-%d", len(s.authRequests)+1), clientID: r.ClientID, redirectURI: r.RedirectURI,
		scopes: r.Scopes, state: r.State, nonce: r.Nonce, responseType: r.ResponseType, responseMode: r.ResponseMode}
	s.authRequests[ar.id] = ar
	return ar, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ar, ok := s.authRequests[id]; ok {
		return ar, nil
	}
	return nil, errors.New("auth request not found")
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errors.New("code not found")
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.authRequests, id)
	for c, x := range s.codes {
		if x == id {
			delete(s.codes, c)
		}
	}
	return nil
}

func (s *storage) CreateAccessToken(_ context.Context, r op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens++
	if ar, ok := r.(*authRequest); ok {
		s.pendingSID[ar.userID] = ar.sessionID
	}
	return fmt.Sprintf("idp-token-%d", s.tokens), time.Now().Add(tokenTTL), nil
}

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("refresh tokens are not supported")
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

func (s *storage) RevokeToken(context.Context, string, string, string) *oidc.Error {
	return oidc.ErrServerError().WithDescription("revocation is not supported")
}

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return signingKey(s.keys[len(s.keys)-1]), nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]op.Key, len(s.keys))
	for i, k := range s.keys {
		out[i] = publicKey(k)
	}
	return out, nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if id != ClientID {
		return nil, errors.New("client not found")
	}
	return webClient{}, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if id != ClientID || secret != clientSecret {
		return errors.New("invalid client")
	}
	return nil
}

func (s *storage) SetUserinfoFromScopes(_ context.Context, u *oidc.UserInfo, userID, _ string, _ []string) error {
	u.Subject = userID
	return nil
}

func (s *storage) SetUserinfoFromToken(_ context.Context, u *oidc.UserInfo, _, subject, _ string) error {
	u.Subject = subject
	return nil
}

func (s *storage) SetIntrospectionFromToken(_ context.Context, r *oidc.IntrospectionResponse, _, subject, _ string) error {
	r.Active, r.Subject = true, subject
	return nil
}

// GetPrivateClaimsFromScopes adds the login session's "sid" to the access
// token, as Keycloak does.
func (s *storage) GetPrivateClaimsFromScopes(_ context.Context, userID, _ string, _ []string) (map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sid, ok := s.pendingSID[userID]
	if !ok {
		return nil, nil
	}
	delete(s.pendingSID, userID)
	return map[string]any{"sid": sid}, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("private_key_jwt is not supported")
}

func (s *storage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (s *storage) Health(context.Context) error { return nil }

type signingKey rsaKey

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.priv }
func (k signingKey) ID() string                                  { return k.id }

type publicKey rsaKey

func (k publicKey) ID() string                         { return k.id }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.priv.PublicKey }

// authRequest is one authorization request and, once logged in, its user
// and login session.
type authRequest struct {
	id, clientID, redirectURI, state, nonce string
	scopes                                  []string
	responseType                            oidc.ResponseType
	responseMode                            oidc.ResponseMode
	userID, sessionID                       string
	done                                    bool
	authTime                                time.Time
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return nil }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.userID }
func (a *authRequest) Done() bool                            { return a.done }

// webClient is the OP's one client: a confidential web application whose
// access tokens are JWTs.
type webClient struct{}

func (webClient) GetID() string                       { return ClientID }
func (webClient) RedirectURIs() []string              { return []string{redirectURI} }
func (webClient) PostLogoutRedirectURIs() []string    { return nil }
func (webClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (webClient) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodPost }
func (webClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (webClient) GrantTypes() []oidc.GrantType        { return []oidc.GrantType{oidc.GrantTypeCode} }
func (webClient) LoginURL(id string) string           { return "/login?authRequestID=" + url.QueryEscape(id) }
func (webClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }
func (webClient) IDTokenLifetime() time.Duration      { return tokenTTL }
func (webClient) DevMode() bool                       { return false }
func (webClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (webClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (webClient) IsScopeAllowed(string) bool           { return true }
func (webClient) IDTokenUserinfoClaimsAssertion() bool { return false }
func (webClient) ClockSkew() time.Duration             { return 0 }

func jsonDecode(resp *http.Response, v any) error {
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("testidp: token endpoint: %s: %s", resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
