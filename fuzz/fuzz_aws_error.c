/* Fuzzes the AWS error-body parsers of all three protocols and the XML
 * helpers used on every Query response. */
#include <stdint.h>
#include <stdlib.h>

#include "aws/client.h"
#include "aws/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gm_headers h;
    gm_headers_init(&h);
    if (size > 0 && data[0] & 1)
        gm_ignore(gm_headers_add(&h, "x-amzn-ErrorType", "Fuzzed:http://x"));
    for (int proto = GM_PROTO_QUERY; proto <= GM_PROTO_REST_JSON; proto++) {
        gm_error err = {0};
        gm_ignore(gm_aws_parse_error((gm_protocol)proto, 400, &h, (const char *)data, size, &err));
    }
    xmlDocPtr doc = NULL;
    if (gm_xml_parse((const char *)data, size, &doc, NULL) == GM_OK) {
        xmlNodePtr root = xmlDocGetRootElement(doc);
        free(gm_xml_text(root, "GetCallerIdentityResult/Account"));
        gm_xml_find(root, "item");
        GM_XML_FOREACH (n, root, "item") {
            free(gm_xml_text(n, ""));
        }
        xmlFreeDoc(doc);
    }
    gm_headers_release(&h);
    return 0;
}
