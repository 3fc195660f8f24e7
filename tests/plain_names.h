/* For the tests that measure any malloc: built in the tree they call hmm
 * (the standard names in an override build, the hmm_* names otherwise);
 * built alone with cc they run on the C library's malloc. */
#ifndef HMM_TEST_PLAIN_NAMES_H
#define HMM_TEST_PLAIN_NAMES_H

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#if defined(HAVE_CONFIG_H) && !defined(HMM_OVERRIDE)
#include "hmm.h"
#define malloc hmm_malloc
#define free hmm_free
#endif

#endif
