#include "aws/sts.h"

#include <string.h>

#include "aws/xml.h"

gm_status gm_sts_get_caller_identity(gm_aws_client *c, gm_caller_identity *out, gm_error *err)
{
    memset(out, 0, sizeof *out);
    xmlDocPtr doc = NULL;
    gm_status st = gm_aws_query(c, &gm_svc_sts, "GetCallerIdentity", NULL, &doc, err);
    if (st != GM_OK)
        return st;
    xmlNodePtr r = gm_xml_path(xmlDocGetRootElement(doc), "GetCallerIdentityResult");
    if (!r) {
        xmlFreeDoc(doc);
        return gm_error_set(
            err, GM_ERR_PARSE,
            "malformed response from sts GetCallerIdentity: no GetCallerIdentityResult");
    }
    gm_xml_text_to(r, "Account", out->account, sizeof out->account);
    gm_xml_text_to(r, "Arn", out->arn, sizeof out->arn);
    gm_xml_text_to(r, "UserId", out->user_id, sizeof out->user_id);
    xmlFreeDoc(doc);
    if (!*out->account || !*out->arn)
        return gm_error_set(err, GM_ERR_PARSE,
                            "malformed response from sts GetCallerIdentity: no account or arn");
    return GM_OK;
}
