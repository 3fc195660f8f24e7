/* Stands in for a C++ test when configure found no C++ compiler. */
#include <stdio.h>

int main(void)
{
    printf("SKIP: no C++ compiler\n");
    return 77;
}
