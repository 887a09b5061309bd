/* fuzz_inbound.c - libFuzzer target for the API channel's inbound JSON
 * parser and validator (the code path behind POST /channels/{id}/inbound). */
#include <stddef.h>
#include <stdint.h>

#include "base/sb.h"
#include "channels/api_inbound.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sb_api_inbound in;
    int rc = sb_api_inbound_parse((const char *)data, size, &in);
    if (rc == 0) {
        /* A success must have produced what the ingest relies on. */
        SB_ASSERT(in.external_id != NULL && in.text != NULL);
        SB_ASSERT(in.from_id != NULL || in.phone != NULL || in.email != NULL);
    } else {
        SB_ASSERT(in.status == 400 || in.status == 422);
        SB_ASSERT(in.code[0] != '\0');
    }
    sb_api_inbound_free(&in);
    return 0;
}
