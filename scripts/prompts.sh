#!/usr/bin/env bash
# Makes the voice prompts: DIR/{ru,en}/NAME.wav, 8 kHz mono 16-bit PCM,
# spoken by espeak-ng and resampled by sox; DIR/beep.wav is a 1 kHz tone.
# Idempotent: a file that exists and is newer than this script is kept.
set -eu
dir=${1:?usage: prompts.sh DIR}
script=$0
mkdir -p "$dir/ru" "$dir/en"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fresh() { [ -s "$1" ] && [ "$1" -nt "$script" ]; }

say() { # lang name text
    local out="$dir/$1/$2.wav"
    fresh "$out" && return 0
    espeak-ng -v "$1" -s 150 -w "$tmp/raw.wav" "$3"
    sox -q "$tmp/raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$tmp/out.wav" gain -n -3
    mv "$tmp/out.wav" "$out"
}

say ru menu_main "Здравствуйте! Для отдела продаж нажмите 1, для поддержки — 2, для связи с оператором — 0."
say en menu_main "Hello! For sales press 1, for support press 2, to speak to an operator press 0."
say ru invalid_choice "Неверный выбор. Попробуйте ещё раз."
say en invalid_choice "Sorry, that is not a valid choice. Please try again."
say ru goodbye "Спасибо за звонок. До свидания!"
say en goodbye "Thank you for calling. Goodbye!"
say ru wait "Пожалуйста, оставайтесь на линии. Вам ответит первый освободившийся оператор."
say en wait "Please stay on the line. The next available agent will answer your call."
say ru voicemail "Оставьте сообщение после сигнала."
say en voicemail "Please leave a message after the tone."
for lang in ru en; do
    out="$dir/$lang/beep.wav"
    fresh "$out" || sox -q -n -r 8000 -c 1 -b 16 -e signed-integer "$out" synth 0.4 sine 1000 gain -6
done
touch "$dir/.stamp"
