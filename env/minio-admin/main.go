// minio-admin: makes the local environment's read-only MinIO user for pods. MinIO's admin API encrypts request
// bodies with the caller's secret key, so this uses MinIO's own client library (madmin-go) rather than a
// hand-written request. Built by env/build.ts (component minio-admin) from the Go module proxy.
//
// Usage: MINIO_ENDPOINT=127.0.0.1:9000 MINIO_ROOT_USER=… MINIO_ROOT_PASSWORD=… minio-admin read-only-user <user> <password>
// (the password on stdin when <password> is "-").
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/minio/madmin-go/v3"
)

// Read every object of every bucket, list them, nothing else.
const readOnlyPolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::*/*"]},
    {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": ["arn:aws:s3:::*"]}
  ]
}`

const policyName = "modelship-pods-read-only"

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "minio-admin: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 4 || os.Args[1] != "read-only-user" {
		fail("usage: minio-admin read-only-user <user> <password|->")
	}
	user, password := os.Args[2], os.Args[3]
	if password == "-" {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			fail("reading the password from stdin: %v", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	endpoint, root, rootPassword := os.Getenv("MINIO_ENDPOINT"), os.Getenv("MINIO_ROOT_USER"), os.Getenv("MINIO_ROOT_PASSWORD")
	if endpoint == "" || root == "" || rootPassword == "" {
		fail("MINIO_ENDPOINT, MINIO_ROOT_USER and MINIO_ROOT_PASSWORD must be set")
	}
	adm, err := madmin.New(endpoint, root, rootPassword, false)
	if err != nil {
		fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := adm.AddCannedPolicy(ctx, policyName, []byte(readOnlyPolicy)); err != nil {
		fail("adding the policy: %v", err)
	}
	if err := adm.AddUser(ctx, user, password); err != nil {
		fail("adding the user: %v", err)
	}
	// Idempotent: attaching a policy the user already has is not an error worth failing on.
	if _, err := adm.AttachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{policyName}, User: user}); err != nil &&
		!strings.Contains(err.Error(), "already") {
		fail("attaching the policy: %v", err)
	}
	fmt.Printf("read-only user %s (policy %s)\n", user, policyName)
}
