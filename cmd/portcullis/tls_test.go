package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// testCA is a certificate authority the test makes up.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue returns the PEM certificate and key of a leaf for cn: a server
// certificate for 127.0.0.1 and localhost, or a client certificate.
func (ca *testCA) issue(t *testing.T, cn string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

func (ca *testCA) clientCert(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	c, k := ca.issue(t, cn, false)
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsEnv is a `serve` with TLS on loopback, with files the test can swap.
type tlsEnv struct {
	addr, httpAddr, data, certFile, keyFile, caFile, adminKey string
}

func startTLS(t *testing.T, serverCA, clientCA *testCA) *tlsEnv {
	t.Helper()
	dir := t.TempDir()
	e := &tlsEnv{data: filepath.Join(dir, "data"), certFile: filepath.Join(dir, "tls.crt"), keyFile: filepath.Join(dir, "tls.key")}
	c, k := serverCA.issue(t, "server-1", true)
	writeFile(t, e.certFile, c)
	writeFile(t, e.keyFile, k)
	cfg := serveConfig{dataDir: e.data, tlsCert: e.certFile, tlsKey: e.keyFile, httpListen: freeAddr(t)}
	if clientCA != nil {
		e.caFile = filepath.Join(dir, "client-ca.pem")
		writeFile(t, e.caFile, clientCA.pem)
		cfg.clientCA = e.caFile
	}
	e.httpAddr = cfg.httpListen
	addr, stop := startServeConfig(t, cfg, nil)
	t.Cleanup(func() { _ = stop() })
	e.addr = addr
	e.adminKey = strings.TrimSpace(string(mustRead(t, filepath.Join(e.data, "admin.key"))))
	return e
}

// listBans calls the authority through client.Dial with tlsCfg.
func (e *tlsEnv) listBans(t *testing.T, tlsCfg *tls.Config) error {
	t.Helper()
	c, err := client.Dial(e.addr, client.WithTLS(tlsCfg), client.WithAPIKey(e.adminKey))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard
	defer cancel()
	_, err = c.Bans.ListBans(ctx, &pb.ListBansRequest{})
	return err
}

// serverCN returns the common name of the certificate a fresh TLS
// connection to addr is served.
func serverCN(t *testing.T, addr string, roots *x509.CertPool) (string, error) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

func TestServeTLSAndReload(t *testing.T) {
	ca := newTestCA(t, "ca-1")
	e := startTLS(t, ca, nil)
	if err := e.listBans(t, &tls.Config{RootCAs: ca.pool()}); err != nil {
		t.Fatalf("client.Dial with WithTLS: %v", err)
	}
	// A plaintext client gets nowhere.
	c, err := client.Dial(e.addr, client.WithInsecure(), client.WithAPIKey(e.adminKey))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err = c.Bans.ListBans(ctx, &pb.ListBansRequest{})
	cancel()
	c.Close()
	if err == nil {
		t.Fatal("a plaintext client was served by a TLS listener")
	}
	// The HTTP listener is HTTPS with the same certificate.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}}, Timeout: 5 * time.Second}
	resp, err := hc.Get("https://" + e.httpAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz over TLS: %s", resp.Status)
	}

	// Replace the files with a certificate of another CA: the next
	// handshake sees it, without a restart.
	if cn, err := serverCN(t, e.addr, ca.pool()); err != nil || cn != "server-1" {
		t.Fatalf("before the reload: %q, %v", cn, err)
	}
	ca2 := newTestCA(t, "ca-2")
	cert, key := ca2.issue(t, "server-2", true)
	writeFile(t, e.keyFile, key)
	writeFile(t, e.certFile, cert)
	if cn, err := serverCN(t, e.addr, ca2.pool()); err != nil || cn != "server-2" {
		t.Fatalf("after the reload: %q, %v", cn, err)
	}
	if err := e.listBans(t, &tls.Config{RootCAs: ca2.pool()}); err != nil {
		t.Fatalf("client after the reload: %v", err)
	}
	if _, err := serverCN(t, e.httpAddr, ca2.pool()); err != nil {
		t.Fatalf("HTTP listener after the reload: %v", err)
	}
	// A broken file keeps the previous certificate.
	writeFile(t, e.certFile, []byte("not a certificate"))
	if cn, err := serverCN(t, e.addr, ca2.pool()); err != nil || cn != "server-2" {
		t.Fatalf("with a broken file: %q, %v", cn, err)
	}
}

func TestServeMutualTLS(t *testing.T) {
	serverCA, clientCA, otherCA := newTestCA(t, "server-ca"), newTestCA(t, "client-ca"), newTestCA(t, "other-ca")
	e := startTLS(t, serverCA, clientCA)
	if err := e.listBans(t, &tls.Config{RootCAs: serverCA.pool()}); err == nil {
		t.Fatal("a client without a certificate was served under --client-ca")
	}
	if err := e.listBans(t, &tls.Config{RootCAs: serverCA.pool(), Certificates: []tls.Certificate{otherCA.clientCert(t, "mallory")}}); err == nil {
		t.Fatal("a client certificate of another CA was accepted")
	}
	if err := e.listBans(t, &tls.Config{RootCAs: serverCA.pool(), Certificates: []tls.Certificate{clientCA.clientCert(t, "svc")}}); err != nil {
		t.Fatalf("a client with a good certificate: %v", err)
	}
	// The client CA file reloads too: a new CA replaces the old one.
	writeFile(t, e.caFile, otherCA.pem)
	if err := e.listBans(t, &tls.Config{RootCAs: serverCA.pool(), Certificates: []tls.Certificate{otherCA.clientCert(t, "svc2")}}); err != nil {
		t.Fatalf("after replacing the client CA: %v", err)
	}
}

func TestServeTLSFlags(t *testing.T) {
	ca := newTestCA(t, "ca")
	dir := t.TempDir()
	c, k := ca.issue(t, "s", true)
	writeFile(t, filepath.Join(dir, "c"), c)
	writeFile(t, filepath.Join(dir, "k"), k)
	for _, args := range [][]string{
		{"--tls-cert", filepath.Join(dir, "c")},
		{"--tls-key", filepath.Join(dir, "k")},
		{"--client-ca", filepath.Join(dir, "c")},
		{"--tls-cert", filepath.Join(dir, "k"), "--tls-key", filepath.Join(dir, "c")},
		{"--tls-cert", filepath.Join(dir, "nope"), "--tls-key", filepath.Join(dir, "k")},
	} {
		if code := run(append([]string{"serve", "--data", t.TempDir(), "--http-listen", ""}, args...)); code != exitUsage {
			t.Errorf("serve %v: exit code %d, want %d", args, code, exitUsage)
		}
	}
	// With TLS, a non-loopback address needs no --insecure.
	addr, stop := startServeConfig(t, serveConfig{listen: "0.0.0.0:0", dataDir: t.TempDir(),
		tlsCert: filepath.Join(dir, "c"), tlsKey: filepath.Join(dir, "k")}, nil)
	if addr == "" {
		t.Fatal("no address")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestServeDataDirModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	err := serve(context.Background(), serveConfig{listen: "127.0.0.1:0", dataDir: dir, logFormat: "json", logLevel: "info"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "writable by every user") {
		t.Fatalf("serve on a world-writable data directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "portcullis.db")); !os.IsNotExist(err) {
		t.Fatalf("serve created the database before refusing: %v", err)
	}
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	_, stop := startServeConfig(t, serveConfig{dataDir: dir}, nil)
	defer stop()
	for _, f := range []string{"portcullis.db", "admin.key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
}
