// Command gotar lists a tar stream as Go's archive/tar reads it (containerd, moby and umoci
// apply layers with it): the reference of the differential test (tests/hostile/test_tar_go.py).
//
// Input: tar streams on stdin, each prefixed by its length as 8 bytes big-endian (many streams per
// process: building and starting Go once). Output, per stream: one JSON line per entry, then a
// line {"end":true} or {"error":"..."}. Names are hex (they are bytes, maybe not UTF-8); "data" is
// the sha256 of the entry's data as the Reader returns it (a sparse file with its holes), "dense"
// the sha256 of that data without its zero bytes (what stays of it once holes are left out).
// An error that starts with "gotar:" is the lister's own bound, not Go's reading.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
)

// maxData bounds the data read of one entry: a sparse file of a few stored bytes may read as
// terabytes of zeros. Past it, the listing ends in an error that starts with "gotar:".
const maxData = 8 << 20

type entry struct {
	Type     string `json:"type"`
	Name     string `json:"name"`
	Linkname string `json:"linkname"`
	Size     int64  `json:"size"`
	Data     string `json:"data"`
	Dense    string `json:"dense"`
}

func list(stream []byte, out *json.Encoder) {
	tr := tar.NewReader(bytes.NewReader(stream))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			out.Encode(map[string]bool{"end": true})
			return
		}
		if err != nil {
			out.Encode(map[string]string{"error": err.Error()})
			return
		}
		whole, dense := sha256.New(), sha256.New()
		buf := make([]byte, 64<<10)
		for read := 0; ; read += len(buf) {
			if read > maxData {
				out.Encode(map[string]string{"error": "gotar: data over 8 MiB not read"})
				return
			}
			n, rerr := tr.Read(buf)
			whole.Write(buf[:n])
			dense.Write(bytes.ReplaceAll(buf[:n], []byte{0}, nil))
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				out.Encode(map[string]string{"error": rerr.Error()})
				return
			}
		}
		out.Encode(entry{string([]byte{hdr.Typeflag}), hex.EncodeToString([]byte(hdr.Name)),
			hex.EncodeToString([]byte(hdr.Linkname)), hdr.Size,
			hex.EncodeToString(whole.Sum(nil)), hex.EncodeToString(dense.Sum(nil))})
	}
}

func main() {
	in := bufio.NewReader(os.Stdin)
	w := bufio.NewWriter(os.Stdout)
	out := json.NewEncoder(w)
	var head [8]byte
	for {
		if _, err := io.ReadFull(in, head[:]); err != nil {
			break
		}
		stream := make([]byte, binary.BigEndian.Uint64(head[:]))
		if _, err := io.ReadFull(in, stream); err != nil {
			os.Exit(2)
		}
		list(stream, out)
		w.Flush()
	}
	w.Flush()
}
