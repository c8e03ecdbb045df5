/* Fuzzes the EC2 Auto Scaling response readers (aws/read.h) over one XML
 * document. */
#include "fuzz_xml_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_specs(data, size, gm_read_asg_specs);
}
