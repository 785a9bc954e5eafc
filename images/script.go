package images

import (
	_ "embed"

	"github.com/nbhosting/nbh-sync/dockerfile"
)

// StartScript is the project's own start-in-dir-as-uid.sh (POSIX sh), put in
// every build context unless the config repo overrides it with
// images/start-in-dir-as-uid.sh.
//
//go:embed start-in-dir-as-uid.sh
var StartScript []byte

// StartScriptPath is where every image must carry the start script.
const StartScriptPath = dockerfile.StartScriptPath
