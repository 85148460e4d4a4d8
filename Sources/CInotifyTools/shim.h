#pragma once
// inotifytools' header uses the kernel's inotify types without including them itself,
// so <sys/inotify.h> must come first.
#include <sys/inotify.h>
#include <inotifytools/inotifytools.h>
