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
say ru blocked "Извините, звонки с этого номера не принимаются."
say en blocked "Sorry, calls from this number are not accepted."
say ru callback_ok "Спасибо! Мы перезвоним вам, как только освободится оператор. До свидания!"
say en callback_ok "Thank you! We will call you back as soon as an agent is free. Goodbye!"
ru_ord=(первый второй третий четвёртый пятый шестой седьмой восьмой девятый)
en_ord=(first second third fourth fifth sixth seventh eighth ninth)
for i in 1 2 3 4 5 6 7 8 9; do
    say ru "position_$i" "Вы ${ru_ord[$((i - 1))]} в очереди."
    say en "position_$i" "You are ${en_ord[$((i - 1))]} in line."
done
say ru position_many "Перед вами больше восьми звонков. Пожалуйста, оставайтесь на линии."
say en position_many "There are more than eight callers ahead of you. Please stay on the line."
# the post-call rating (a queue's "rating": true): asked after the agent hangs up
say ru rating_ask "Пожалуйста, оцените разговор: нажмите от 1 до 5, где 5 — отлично."
say en rating_ask "Please rate the call from 1 to 5, where 5 is excellent."
say ru rating_thanks "Спасибо! До свидания!"
say en rating_thanks "Thank you! Goodbye!"
for key in 1 2 3 4 5 6 7 8 9 star hash; do
    case $key in star) ru_key="звёздочку"; en_key="star" ;; hash) ru_key="решётку"; en_key="hash" ;;
    *) ru_key=$key; en_key=$key ;; esac
    say ru "callback_offer_$key" "Чтобы не ждать, нажмите $ru_key, и мы вам перезвоним."
    say en "callback_offer_$key" "To skip the wait, press $en_key and we will call you back."
done
for lang in ru en; do
    out="$dir/$lang/beep.wav"
    fresh "$out" || sox -q -n -r 8000 -c 1 -b 16 -e signed-integer "$out" synth 0.4 sine 1000 gain -6
    # what an agent hears while an outbound call rings: 425 Hz, 1 s on, 4 s off
    out="$dir/$lang/ringback.wav"
    fresh "$out" || sox -q -n -r 8000 -c 1 -b 16 -e signed-integer "$out" synth 1 sine 425 gain -12 pad 0 4
done
touch "$dir/.stamp"
