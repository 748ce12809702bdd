// blendfx test synth: each MIDI note plays a sine (waveform 0) or a naive saw (1) at the
// note's equal-tempered pitch (A4 = 440 Hz), amplitude gain * velocity / 127, with a 2 ms
// linear attack and a linear release from the note-off (20 ms by default); 16 voices, the
// same on both outputs; CC 120 (all sound off) silences and CC 123 (all notes off) releases
// every voice. Sample-accurate: a note starts on the frame its event carries. Its output is
// known in closed form, so tests can check what a host played, when, and with which
// parameters (gain in dB, waveform, release in s) its saved state set.
#include "DistrhoPlugin.hpp"

#include <cmath>

START_NAMESPACE_DISTRHO

class BlendfxTestSynth : public Plugin
{
public:
    enum { kGain, kWaveform, kRelease, kParamCount };
    static const int kVoices = 16;

    BlendfxTestSynth() : Plugin(kParamCount, 0, 0) {}

protected:
    const char* getLabel() const override { return "blendfx_test_synth"; }
    const char* getDescription() const override { return "Sine or saw voices, for tests"; }
    const char* getMaker() const override { return "blendfx"; }
    const char* getLicense() const override { return "ISC"; }
    uint32_t getVersion() const override { return d_version(1, 0, 0); }
    int64_t getUniqueId() const override { return d_cconst('b', 'f', 'x', 'S'); }

    void initParameter(uint32_t index, Parameter& p) override
    {
        p.hints = kParameterIsAutomatable;
        if (index == kGain) {
            p.name = "Gain"; p.symbol = "gain"; p.unit = "dB";
            p.ranges.def = -6.0f; p.ranges.min = -60.0f; p.ranges.max = 0.0f;
        } else if (index == kRelease) {
            p.name = "Release"; p.symbol = "release"; p.unit = "s";
            p.ranges.def = 0.02f; p.ranges.min = 0.001f; p.ranges.max = 10.0f;
        } else {
            p.hints |= kParameterIsInteger;
            p.name = "Waveform"; p.symbol = "waveform";
            p.ranges.def = 0.0f; p.ranges.min = 0.0f; p.ranges.max = 1.0f;
        }
    }

    float getParameterValue(uint32_t index) const override
    {
        return index == kGain ? fGainDb : index == kRelease ? fRelease : fWaveform;
    }

    void setParameterValue(uint32_t index, float value) override
    {
        if (index == kGain) fGainDb = value;
        else if (index == kRelease) fRelease = value;
        else fWaveform = value;
    }

    void activate() override
    {
        for (Voice& v : fVoices) v = Voice();
    }

    void run(const float**, float** outputs, uint32_t frames,
             const MidiEvent* events, uint32_t eventCount) override
    {
        const double sr = getSampleRate();
        const float gain = std::pow(10.0f, fGainDb / 20.0f);
        const float attack = 1.0f / (0.002f * sr), release = 1.0f / (fRelease * sr);
        uint32_t next = 0;
        for (uint32_t i = 0; i < frames; ++i) {
            for (; next < eventCount && events[next].frame <= i; ++next)
                handle(events[next], sr);
            float sum = 0.0f;
            for (Voice& v : fVoices) {
                if (v.level <= 0.0f && !v.held) continue;
                v.level = v.held ? std::fmin(1.0f, v.level + attack) : v.level - release;
                if (v.level <= 0.0f) { v.level = 0.0f; continue; }
                const double x = fWaveform >= 0.5f ? 2.0 * v.phase - 1.0
                                                   : std::sin(2.0 * M_PI * v.phase);
                sum += gain * v.amp * v.level * static_cast<float>(x);
                v.phase += v.step;
                v.phase -= std::floor(v.phase);
            }
            outputs[0][i] = outputs[1][i] = sum;
        }
    }

private:
    struct Voice { int note = -1; bool held = false; float amp = 0.0f, level = 0.0f;
                   double phase = 0.0, step = 0.0; };

    void handle(const MidiEvent& e, double sr)
    {
        if (e.size != 3) return;
        const uint8_t kind = e.data[0] & 0xF0, note = e.data[1], velocity = e.data[2];
        if (kind == 0x90 && velocity > 0) {
            Voice* v = &fVoices[0];  // a free voice, else the quietest
            for (Voice& w : fVoices)
                if (!w.held && w.level < v->level + (v->held ? 2.0f : 0.0f)) v = &w;
            *v = Voice();
            v->note = note; v->held = true; v->amp = velocity / 127.0f;
            v->step = 440.0 * std::pow(2.0, (note - 69) / 12.0) / sr;
        } else if (kind == 0x80 || kind == 0x90) {
            for (Voice& v : fVoices)
                if (v.held && v.note == note) v.held = false;
        } else if (kind == 0xB0 && (note == 120 || note == 123)) {
            for (Voice& v : fVoices) { v.held = false; if (note == 120) v.level = 0.0f; }
        }
    }

    float fGainDb = -6.0f, fWaveform = 0.0f, fRelease = 0.02f;
    Voice fVoices[kVoices];

    DISTRHO_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(BlendfxTestSynth)
};

Plugin* createPlugin()
{
    return new BlendfxTestSynth();
}

END_NAMESPACE_DISTRHO
