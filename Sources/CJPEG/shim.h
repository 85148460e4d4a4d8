#pragma once
// libjpeg-turbo's TurboJPEG API (Debian libturbojpeg0-dev): errors come back as return
// values with tjGetErrorStr2, never by longjmp, so Swift can call it directly.
#include <turbojpeg.h>
