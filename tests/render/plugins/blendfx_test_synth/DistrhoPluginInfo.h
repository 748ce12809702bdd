// blendfx test synth: a minimal VST3 instrument for blendfx's tests (built from Debian's
// dpf-source by tests/render/test_reaper_instrument.py; never shipped).
#ifndef DISTRHO_PLUGIN_INFO_H_INCLUDED
#define DISTRHO_PLUGIN_INFO_H_INCLUDED

#define DISTRHO_PLUGIN_BRAND   "blendfx"
#define DISTRHO_PLUGIN_NAME    "blendfx test synth"
#define DISTRHO_PLUGIN_URI     "urn:blendfx:test-synth"
#define DISTRHO_PLUGIN_CLAP_ID "org.blendfx.test-synth"

#define DISTRHO_PLUGIN_HAS_UI         0
#define DISTRHO_PLUGIN_IS_RT_SAFE     1
#define DISTRHO_PLUGIN_IS_SYNTH       1
#define DISTRHO_PLUGIN_NUM_INPUTS     0
#define DISTRHO_PLUGIN_NUM_OUTPUTS    2
#define DISTRHO_PLUGIN_WANT_PROGRAMS  0
#define DISTRHO_PLUGIN_WANT_STATE     0
#define DISTRHO_PLUGIN_VST3_CATEGORIES "Instrument|Synth"

#endif
