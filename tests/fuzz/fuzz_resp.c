/* fuzz_resp.c — libFuzzer target for loadgen's response reader (loadgen/resp.h):
 * any bytes as a response head and a chunked body fed in fuzzer-chosen
 * pieces must never read outside the buffer, never overrun the output of
 * resp_server_name, and keep resp_chunked_feed's promise (*used <= len, all
 * consumed when it asks for more). Input: byte 0 is the feed step for the
 * chunked body, then the bytes themselves (head, then body after it). */
#include "resp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = data[0] ? data[0] : 1;
	/* a heap copy of the exact size lets ASan see any read past the end */
	size_t len = size - 1;
	char *buf = malloc(len ? len : 1);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, len);

	int term = 0;
	long end = resp_head_end(buf, len, &term);
	if (end >= 0 && ((term != 2 && term != 4) || (size_t)end + (size_t)term > len))
		abort();
	size_t head_len = end >= 0 ? (size_t)end : len;
	struct resp_head h;
	resp_parse_head(buf, head_len, &h);
	if (memchr(h.code, '\0', sizeof(h.code)) == NULL)
		abort(); /* code must be a C string */
	char name[64];
	resp_server_name(buf, head_len, name, sizeof(name));
	if (memchr(name, '\0', sizeof(name)) == NULL)
		abort();
	char tiny[1];
	resp_server_name(buf, head_len, tiny, sizeof(tiny));
	if (tiny[0] != '\0')
		abort();
	(void)resp_find_ci(buf, len, "keep-alive");
	(void)resp_find_ci(buf, len, "");

	/* whatever follows the head, as a chunked body in pieces */
	size_t off = end >= 0 ? (size_t)end + (size_t)term : 0;
	struct resp_chunked c;
	memset(&c, 0, sizeof(c));
	while (off < len) {
		size_t piece = len - off < step ? len - off : step;
		size_t used = 0;
		int r = resp_chunked_feed(&c, buf + off, piece, &used);
		if (used > piece)
			abort();
		if (r == 0 && used != piece)
			abort();
		if (r != 0)
			break;
		off += used;
	}
	free(buf);
	return 0;
}
