// Command etcd is etcd's own server entry point, built from a wrapper module because
// `go install go.etcd.io/etcd/server/v3@...` refuses modules with replace directives.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
