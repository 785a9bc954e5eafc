// Command fakejupyter runs the fake Jupyter server of package fakejupyter,
// for test images built FROM scratch.
//
//	fakejupyter --port 8888 --base-url /12345/ --token T
//
// FAKE_KERNELS (a JSON list of kernels) sets the initial kernels.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"

	"github.com/nbhosting/nbh-sync/internal/fakejupyter"
)

func main() {
	port := flag.Int("port", 8888, "port to listen on")
	base := flag.String("base-url", "/", "URL prefix")
	token := flag.String("token", "", "token the API wants (empty: none)")
	flag.Parse()
	var ks []fakejupyter.Kernel
	if s := os.Getenv("FAKE_KERNELS"); s != "" {
		if err := json.Unmarshal([]byte(s), &ks); err != nil {
			fmt.Fprintln(os.Stderr, "fakejupyter: FAKE_KERNELS:", err)
			os.Exit(2)
		}
	}
	srv := fakejupyter.New(*base, *token, ks)
	if err := http.ListenAndServe(":"+strconv.Itoa(*port), srv); err != nil {
		fmt.Fprintln(os.Stderr, "fakejupyter:", err)
		os.Exit(1)
	}
}
