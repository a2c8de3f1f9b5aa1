"""pipecat's DeepgramSTTService pointed at asrplatform: run with the pipecat venv's python.

``python pipecat_stt.py BASE_URL KEY WAV``: streams the WAV as 20 ms audio frames, in real time,
through a pipeline of the service and a collector, and prints one JSON line with the final and
interim transcripts pipecat produced. Nothing of pipecat is changed.
"""

import asyncio
import json
import sys
import wave

from pipecat.frames.frames import EndFrame, InputAudioRawFrame, InterimTranscriptionFrame, TranscriptionFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.deepgram.stt import DeepgramSTTService


class Collector(FrameProcessor):
    def __init__(self) -> None:
        super().__init__()
        self.finals: list[str] = []
        self.interims: list[str] = []

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame):
            self.finals.append(frame.text)
        elif isinstance(frame, InterimTranscriptionFrame):
            self.interims.append(frame.text)
        await self.push_frame(frame, direction)


async def main(base_url: str, key: str, wav_path: str) -> None:
    with wave.open(wav_path) as wav:
        rate, pcm = wav.getframerate(), wav.readframes(wav.getnframes())
    collector = Collector()
    task = PipelineTask(
        Pipeline([DeepgramSTTService(api_key=key, base_url=base_url, sample_rate=rate), collector]),
        params=PipelineParams(audio_in_sample_rate=rate),
    )

    async def feed() -> None:
        await asyncio.sleep(1.0)  # the service connects when the pipeline starts
        step = rate * 2 // 50
        for i in range(0, len(pcm), step):
            await task.queue_frame(InputAudioRawFrame(audio=pcm[i : i + step], sample_rate=rate, num_channels=1))
            await asyncio.sleep(0.02)
        await asyncio.sleep(2.0)
        await task.queue_frame(EndFrame())

    await asyncio.gather(PipelineRunner(handle_sigint=False).run(task), feed())
    print(json.dumps({"finals": collector.finals, "interims": collector.interims}))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
