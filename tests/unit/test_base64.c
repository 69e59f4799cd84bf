/*
 * test_base64.c - base/base64.h: RFC 4648 vectors, round trips of every
 * length, and refusal of malformed text.
 */
#include <string.h>

#include "base/base64.h"
#include "tests/unit/unit.h"

static void test_rfc4648_vectors(void)
{
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const coded[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
					     "Zm9vYmFy" };
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		char out[32];
		uint8_t back[32];
		lx_base64_encode((const uint8_t *)plain[i], strlen(plain[i]), out);
		CHECK(strcmp(out, coded[i]) == 0);
		CHECK(lx_base64_decode(coded[i], strlen(coded[i]), back, sizeof(back)) ==
		      (long)strlen(plain[i]));
		CHECK(memcmp(back, plain[i], strlen(plain[i])) == 0);
	}
}

static void test_round_trip_every_length(void)
{
	uint8_t in[300], back[300];
	char text[LX_BASE64_ENCODED_SIZE(300)];
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 37 + 11);
	for (size_t n = 0; n <= sizeof(in); n++) {
		lx_base64_encode(in, n, text);
		CHECK(strlen(text) + 1 == LX_BASE64_ENCODED_SIZE(n));
		CHECK(lx_base64_decode(text, strlen(text), back, sizeof(back)) == (long)n);
		CHECK(memcmp(in, back, n) == 0);
	}
}

static void test_malformed_is_refused(void)
{
	static const char *const bad[] = { "Zg=", "Zg=a", "Z===", "Zh==", "Zm9=Zm9v", "Zm9v!A==",
					   "Zm 9", "=Zm9" };
	uint8_t out[16];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(lx_base64_decode(bad[i], strlen(bad[i]), out, sizeof(out)) == -1);
	CHECK(lx_base64_decode("Zm9vYmFy", 8, out, 5) == -1);   /* does not fit */
}

UNIT_TESTS(TEST(test_rfc4648_vectors), TEST(test_round_trip_every_length),
	   TEST(test_malformed_is_refused))
