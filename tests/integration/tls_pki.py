"""tls_pki.py - throwaway certificate authorities for the TLS tests.

Made at test time with the openssl CLI (Debian's openssl): EC P-256 keys,
certificates valid for two days.  A node's certificate names 127.0.0.1
(every test node listens there) and may serve and identify a client
(mutual TLS between nodes)."""

import os
import subprocess

NODE_EXT = ("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
            "extendedKeyUsage=serverAuth,clientAuth")


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_ca(d, name):
    """NAME.crt and NAME.key in directory d: a self-signed CA."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", name + ".key", "-out", name + ".crt", "-subj", "/CN=" + name,
            "-days", "2", cwd=d)


def make_cert(d, ca, name, ext=NODE_EXT):
    """NAME.crt and NAME.key in d, signed by CA (made by make_ca in d);
    `ext`: the certificate's extensions, openssl -extfile lines."""
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write(ext + "\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
            "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext",
            cwd=d)


def make_pki(d, certs):
    """Two CAs in new directory d, "ca" and "other-ca", and `certs`: (CA,
    NAME, EXT) each (EXT None: a node's).  Returns name -> path in d."""
    os.makedirs(d)
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    for ca, name, ext in certs:
        make_cert(d, ca, name, ext or NODE_EXT)
    return lambda name: os.path.join(d, name)
